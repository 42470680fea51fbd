#!/usr/bin/env python3
"""Import loops between the modules of one Rust crate.

For a crate's `src/` directory, lists each module's dependencies on the other modules of
the same crate and prints the strongly connected components of that graph that have more
than one module: the import cycles. A crate whose modules form layers has none.

A module is one file: `a.rs` and `a/mod.rs` are `a`, `a/b.rs` is `a::b`; the crate root
(`lib.rs` or `main.rs`) is `(root)`. Inline modules (`mod tests { ... }`) belong to their
file. Module A depends on module B when A's code names B through

- `use crate::b::...` (grouped uses too: `use crate::{b::X, c}`), or a path `crate::b::x`
  anywhere in the code;
- `super::` (and `super::super::`), resolved from the file module, or from the inline
  module it is written in (so `use super::*` in a file's own `mod tests` is no dependency);
- `self::b` or a bare path `b::x` where `b` is a child module of A (in the root: any
  top-level module);
- a name re-exported by the crate root (`pub use b::{X, Y}` in `lib.rs`, then
  `use crate::X` elsewhere) counts as a dependency on `b`, where the name is defined.

The root's `mod` declarations and re-exports are structure, not dependencies. Comments
and string literals are ignored; test code (`#[cfg(test)]`) counts like any other code
unless `--no-tests` is given. A dependency on `a::b` counts as one on the longest module
prefix that is a file (`crate::journal::wal::Frame` -> `journal::wal`).

Usage:
    tools/module_cycles.py [--skip PREFIX]... [--check] [--edges] [--no-tests] SRC_DIR...

    --skip journal   leaves out `journal` and `journal::*` (modules and edges to them)
    --edges          prints every module's dependencies with the names it takes from each
    --check          exits 1 if any crate given has a cycle (for `make lint`)
    --self-test      runs the script on a small made-up crate with known loops first, and
                     fails if it does not find exactly those (so a check cannot pass by
                     seeing nothing)

Output per crate: one line per module with its dependencies (with `--edges`), then each
cycle as `cycle of N modules: a, b, c` with the dependencies inside it, then a summary
line `<dir>: M modules, E dependencies, C cycles (sizes ...)`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
KEYWORDS_PATH = {"crate", "super", "self", "Self"}


def strip_code(text: str) -> str:
    """Blanks comments, string and char literals (keeps offsets and newlines)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"\w", text[i - 1 : i] or " "):
            m = re.match(r'r(#*)"', text[i:])
            hashes = m.group(1)
            end = text.find('"' + hashes, i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"' or (c == "b" and nxt == '"' and not re.match(r"\w", text[i - 1 : i] or " ")):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime or a label
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_cfg_test(code: str) -> str:
    """Blanks every `#[cfg(test)]` item whose body is a brace block (test modules)."""
    for m in reversed(list(re.finditer(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]", code))):
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue
        depth, j = 0, brace
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        code = code[: m.start()] + re.sub(r"[^\n]", " ", code[m.start() : j + 1]) + code[j + 1 :]
    return code


def inline_depths(code: str) -> list[int]:
    """For every offset, how many inline `mod name { }` blocks enclose it."""
    depth_at = [0] * (len(code) + 1)
    opens = {m.end() - 1 for m in re.finditer(r"\bmod\s+" + IDENT + r"\s*\{", code)}
    stack: list[bool] = []  # per open brace: is it an inline module's
    inline = 0
    for i, c in enumerate(code):
        if c == "{":
            is_mod = i in opens
            stack.append(is_mod)
            inline += is_mod
        elif c == "}" and stack:
            inline -= stack.pop()
        depth_at[i] = inline
    return depth_at


def parse_use_tree(s: str, prefix: list[str], out: list[list[str]]) -> None:
    """Expands a use tree (`a::{b::C, d}`) into its paths, each a list of segments."""
    s = s.strip()
    items, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(s[start:i])
            start = i + 1
    items.append(s[start:])
    for item in items:
        item = item.strip()
        if not item:
            continue
        brace = item.find("{")
        if brace >= 0 and item.endswith("}"):
            head = [p.strip() for p in item[:brace].split("::") if p.strip()]
            parse_use_tree(item[brace + 1 : -1], prefix + head, out)
        else:
            item = re.sub(r"\s+as\s+" + IDENT + "$", "", item)
            out.append(prefix + [p.strip() for p in item.split("::") if p.strip()])


class Crate:
    def __init__(self, src: str, skip: list[str], no_tests: bool):
        self.src = src.rstrip("/")
        self.skip = skip
        self.no_tests = no_tests
        self.files: dict[str, str] = {}  # module path ("a::b", "" for the root) -> file
        root = None
        for name in ("lib.rs", "main.rs"):
            if os.path.exists(os.path.join(self.src, name)):
                root = name
                break
        if root is None:
            raise SystemExit(f"{src}: neither lib.rs nor main.rs")
        for dirpath, _, filenames in os.walk(self.src):
            for f in filenames:
                if not f.endswith(".rs"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), self.src)
                parts = rel[:-3].split(os.sep)
                if rel == root:
                    mod = ""
                elif parts[-1] == "mod":
                    mod = "::".join(parts[:-1])
                else:
                    mod = "::".join(parts)
                if mod and self.skipped(mod):
                    continue
                self.files[mod] = os.path.join(dirpath, f)
        self.codes = {}
        for mod, path in self.files.items():
            with open(path, encoding="utf-8") as fh:
                code = strip_code(fh.read())
            if no_tests:
                code = drop_cfg_test(code)
            self.codes[mod] = code
        self.reexports = self.root_reexports()

    def skipped(self, mod: str) -> bool:
        return any(mod == p or mod.startswith(p + "::") for p in self.skip)

    def children(self, mod: str) -> set[str]:
        pre = mod + "::" if mod else ""
        return {m[len(pre) :].split("::")[0] for m in self.files if m and m.startswith(pre) and m != mod}

    def root_reexports(self) -> dict[str, str]:
        """Names the root re-exports (`pub use a::X`) -> the module path they come from."""
        found = {}
        for m in re.finditer(r"\bpub\s+use\s+([^;]*);", self.codes[""]):
            paths: list[list[str]] = []
            parse_use_tree(m.group(1), [], paths)
            for p in paths:
                if p and p[0] == "crate":
                    p = p[1:]
                if len(p) >= 2 and p[-1] not in ("*", "self"):
                    found[p[-1]] = "::".join(p[:-1])
        return found

    def resolve(self, mod: str, depth: int, segs: list[str]) -> tuple[str | None, str]:
        """The file module a path written in `mod` (inside `depth` inline modules) names,
        and the name taken from it; None if it is outside the crate or the same file."""
        segs = [s for s in segs if s]
        if not segs:
            return None, ""
        base: list[str] | None
        if segs[0] == "crate":
            base, rest = [], segs[1:]
        elif segs[0] == "super":
            k = 0
            while k < len(segs) and segs[k] == "super":
                k += 1
            if k <= depth:
                return None, ""  # inside this same file
            up = k - depth
            parts = mod.split("::") if mod else []
            if up > len(parts):
                return None, ""
            base, rest = parts[: len(parts) - up], segs[k:]
        elif segs[0] == "self":
            if depth:
                return None, ""
            base, rest = (mod.split("::") if mod else []), segs[1:]
        elif segs[0] in self.children(mod) and depth == 0:
            base, rest = (mod.split("::") if mod else []), segs
        else:
            return None, ""
        # A name the root re-exports, reached through the root.
        if not base and rest and rest[0] in self.reexports and rest[0] not in self.children(""):
            target = self.reexports[rest[0]]
            return self.longest_module(target.split("::")), rest[0]
        path = base + rest
        target = self.longest_module(path)
        name = path[len(target.split("::")) if target else 0 :]
        return target, (name[0] if name else "self")

    def longest_module(self, path: list[str]) -> str | None:
        for k in range(len(path), -1, -1):
            cand = "::".join(path[:k])
            if cand in self.files:
                return cand
            if cand and self.skipped(cand):
                return None
        return None

    def dependencies(self) -> dict[str, dict[str, set[str]]]:
        deps: dict[str, dict[str, set[str]]] = {m: defaultdict(set) for m in self.files}
        for mod, code in self.codes.items():
            depths = inline_depths(code)
            spans = []
            for m in re.finditer(r"\b(pub(\s*\([^)]*\))?\s+)?use\s+([^;]*);", code):
                spans.append((m.start(), m.end()))
                if mod == "" and m.group(1):
                    continue  # the root's re-exports are structure
                paths: list[list[str]] = []
                parse_use_tree(m.group(3), [], paths)
                for p in paths:
                    self.add(deps, mod, depths[m.start()], p)
            # Paths in code (not in `use` items).
            heads = {"crate", "super", "self"} | self.children(mod)
            pat = r"(?<![\w:])(" + "|".join(sorted(heads)) + r")((?:\s*::\s*" + IDENT + r")+)"
            for m in re.finditer(pat, code):
                if any(a <= m.start() < b for a, b in spans):
                    continue
                before = code[max(0, m.start() - 4) : m.start()]
                if re.search(r"\bmod\s*$", code[max(0, m.start() - 8) : m.start()]) or before.endswith("in "):
                    continue
                segs = [m.group(1)] + [s.strip() for s in m.group(2).split("::") if s.strip()]
                self.add(deps, mod, depths[m.start()], segs)
        return deps

    def add(self, deps, mod, depth, segs) -> None:
        target, name = self.resolve(mod, depth, segs)
        if target is None or target == mod:
            return
        deps[mod][target].add(name)


def sccs(nodes: list[str], edges: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Tarjan's strongly connected components."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def label(mod: str) -> str:
    return mod or "(root)"


def report(src: str, skip: list[str], show_edges: bool, no_tests: bool) -> int:
    crate = Crate(src, skip, no_tests)
    deps = crate.dependencies()
    n_edges = sum(len(t) for t in deps.values())
    if show_edges:
        for mod in sorted(deps):
            targets = deps[mod]
            line = ", ".join(f"{label(t)} ({' '.join(sorted(targets[t]))})" for t in sorted(targets))
            print(f"  {label(mod)} -> {line or '-'}")
    cycles = [c for c in sccs(list(deps), deps) if len(c) > 1]
    cycles.sort(key=lambda c: (-len(c), c))
    for c in cycles:
        print(f"  cycle of {len(c)} modules: {', '.join(label(m) for m in c)}")
        members = set(c)
        for mod in c:
            inside = [t for t in sorted(deps[mod]) if t in members]
            for t in inside:
                print(f"    {label(mod)} -> {label(t)} ({' '.join(sorted(deps[mod][t]))})")
    sizes = " ".join(str(len(c)) for c in cycles)
    in_cycles = sum(len(c) for c in cycles)
    print(
        f"{src}: {len(deps)} modules, {n_edges} dependencies, {len(cycles)} cycles"
        + (f" (sizes {sizes}; {in_cycles} modules in cycles)" if cycles else "")
    )
    return len(cycles)


SELF_TEST = {
    "lib.rs": "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\npub use b::Bee;\n",
    # a -> b through a root re-export; the comment and the string name nothing.
    "a.rs": "use crate::Bee; // crate::d::X\nconst S: &str = \"crate::e::Y\";\n",
    # b -> a through a grouped use; b's own tests (super::*) are no dependency.
    "b.rs": "use crate::{a, c::Sea};\npub struct Bee;\n#[cfg(test)]\nmod tests { use super::*; }\n",
    "c.rs": "pub struct Sea;\npub fn f() { crate::d::g() }\n",
    # d/mod.rs and its child: d -> d::x by a bare path, d::x -> d through super.
    "d/mod.rs": "mod x;\npub fn g() { x::h() }\n",
    "d/x.rs": "pub fn h() { super::g() }\n",
    "e.rs": "use crate::c::Sea;\n",
}


def self_test() -> None:
    """Fails (exit 2) unless the made-up crate's loops are found exactly."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, text in SELF_TEST.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        crate = Crate(tmp, [], False)
        deps = crate.dependencies()
        found = sorted(c for c in sccs(list(deps), deps) if len(c) > 1)
        want = [["a", "b"], ["d", "d::x"]]
        edges = {(m, t) for m, ts in deps.items() for t in ts}
        want_edges = {("a", "b"), ("b", "a"), ("b", "c"), ("c", "d"), ("d", "d::x"), ("d::x", "d"), ("e", "c")}
        if found != want or edges != want_edges:
            print(f"module_cycles: self-test failed: cycles {found}, edges {sorted(edges)}", file=sys.stderr)
            sys.exit(2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="+", help="a crate's src/ directory")
    ap.add_argument("--skip", action="append", default=[], help="module prefix to leave out")
    ap.add_argument("--edges", action="store_true", help="print every module's dependencies")
    ap.add_argument("--check", action="store_true", help="exit 1 if there is any cycle")
    ap.add_argument("--no-tests", action="store_true", help="leave out #[cfg(test)] code")
    ap.add_argument("--self-test", action="store_true", help="check the script on a made-up crate first")
    args = ap.parse_args()
    if args.self_test:
        self_test()
    total = 0
    for src in args.src:
        total += report(src, args.skip, args.edges, args.no_tests)
    if args.check and total:
        print(f"module_cycles: {total} import cycles; the modules of a crate must form layers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
