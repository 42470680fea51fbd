#!/usr/bin/env bash
# Builds local stand-ins for the two base images the Dockerfile names, for a machine that
# has a Docker daemon but no access to a container registry (Docker Hub).
#
# On a normal machine you do NOT need this: `docker build -t slotpool .` pulls the official
# `rust:1-bookworm` and `debian:bookworm-slim` images. This script is scaffolding for build
# machines that reach only Debian's apt mirror and crates.io; the Dockerfile stays the same.
#
# What it makes, from Debian's own packages and the Rust toolchain already on this host:
#   debian:bookworm-slim  debootstrap --variant=minbase bookworm, trimmed like the official
#                         slim image (no docs, man pages or locales; empty apt lists),
#                         apt sources for bookworm, bookworm-updates and bookworm-security.
#   rust:1-bookworm       that image plus gcc, libc6-dev, make, pkg-config, ca-certificates,
#                         git and this host's active Rust toolchain (without its HTML docs)
#                         laid out as the official image does: RUSTUP_HOME=/usr/local/rustup,
#                         CARGO_HOME=/usr/local/cargo, PATH starting with /usr/local/cargo/bin.
#                         Any CA certificates in the host's /usr/local/share/ca-certificates
#                         (e.g. a TLS-intercepting egress proxy's) are trusted in this build
#                         image only, so cargo reaches crates.io the way the host does; the
#                         runtime image never gets them.
#
# Usage (as root, with dockerd running):
#   deploy/docker/local-base-images.sh
#   docker build --network host -t slotpool .
# Environment: MIRROR (default: the host's Debian mirror from /etc/apt, else
# http://deb.debian.org/debian), SECURITY_MIRROR (default: MIRROR with "debian" ->
# "debian-security"), TOOLCHAIN (default: the sysroot of the host's active `rustc`),
# WORKDIR (default: a fresh directory under /var/tmp, removed at the end),
# NETWORK (docker network for apt-get in the rust stand-in; default: host).
set -euo pipefail

SUITE=bookworm
SLIM_TAG=debian:bookworm-slim
RUST_TAG=rust:1-bookworm
NETWORK=${NETWORK:-host}

die() {
  echo "local-base-images: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and docker import need it)"
command -v docker >/dev/null || die "docker CLI missing"
docker info >/dev/null 2>&1 || die "no Docker daemon answers (start dockerd first)"
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi

# The mirror apt already uses on this host (deb822 .sources or one-line .list files).
host_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${MIRROR:-$(host_mirror)}
MIRROR=${MIRROR%/}
SECURITY_MIRROR=${SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}

TOOLCHAIN=${TOOLCHAIN:-$(rustc --print sysroot)}
TOOLCHAIN=$(readlink -f "$TOOLCHAIN")
if [ ! -x "$TOOLCHAIN/bin/cargo" ] || [ ! -x "$TOOLCHAIN/bin/rustc" ]; then
  die "$TOOLCHAIN is not a Rust toolchain (no bin/cargo, bin/rustc)"
fi
RUST_VERSION=$("$TOOLCHAIN/bin/rustc" --version | awk '{print $2}')
HOST_TRIPLE=$("$TOOLCHAIN/bin/rustc" -vV | awk '/^host:/ {print $2}')
TOOLCHAIN_NAME="$RUST_VERSION-$HOST_TRIPLE"
RUSTUP_BIN=$(command -v rustup || true)

WORKDIR=${WORKDIR:-$(mktemp -d /var/tmp/slotpool-base.XXXXXX)}
ROOTFS="$WORKDIR/rootfs"
BUILDER="slotpool-local-rust-$$"
cleanup() {
  docker rm -f "$BUILDER" >/dev/null 2>&1 || true
  # debootstrap may leave /proc or /sys mounted inside the rootfs when it fails.
  umount -R "$ROOTFS/proc" "$ROOTFS/sys" 2>/dev/null || true
  rm -rf --one-file-system "$WORKDIR"
}
trap cleanup EXIT

# --- debian:bookworm-slim -------------------------------------------------------------
echo "local-base-images: debootstrap $SUITE from $MIRROR into $ROOTFS"
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR"

rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# What the official slim image leaves out, now and for every later apt-get install.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOTFS"/usr/share/{man,groff,info,lintian,linda}/*
find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
  "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/*
# The host's name resolution does not belong in the image: docker supplies its own.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"

echo "local-base-images: importing $SLIM_TAG"
tar --numeric-owner -C "$ROOTFS" -c . |
  docker import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$SLIM_TAG" >/dev/null
rm -rf --one-file-system "$ROOTFS"

# --- rust:1-bookworm ------------------------------------------------------------------
echo "local-base-images: $RUST_TAG with toolchain $TOOLCHAIN_NAME from $TOOLCHAIN"
mkdir -p "$WORKDIR/ca"
cp /usr/local/share/ca-certificates/*.crt "$WORKDIR/ca/" 2>/dev/null || true
mounts=(-v "$TOOLCHAIN:/mnt/toolchain:ro" -v "$WORKDIR/ca:/mnt/ca:ro")
[ -n "$RUSTUP_BIN" ] && mounts+=(-v "$(readlink -f "$RUSTUP_BIN"):/mnt/rustup:ro")
docker run --name "$BUILDER" --network "$NETWORK" "${mounts[@]}" \
  -e TOOLCHAIN_NAME="$TOOLCHAIN_NAME" "$SLIM_TAG" bash -euo pipefail -c '
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates gcc libc6-dev make pkg-config git >/dev/null
    rm -rf /var/lib/apt/lists/*
    if ls /mnt/ca/*.crt >/dev/null 2>&1; then
      cp /mnt/ca/*.crt /usr/local/share/ca-certificates/
      update-ca-certificates >/dev/null
    fi
    export RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo
    dest=$RUSTUP_HOME/toolchains/$TOOLCHAIN_NAME
    mkdir -p "$dest" "$CARGO_HOME/bin"
    tar -C /mnt/toolchain --exclude=./share/doc -c . | tar -C "$dest" -x
    if [ -x /mnt/rustup ]; then
      # rustup and its proxies, as the official image has them.
      install -m 0755 /mnt/rustup "$CARGO_HOME/bin/rustup"
      printf "version = \"12\"\ndefault_toolchain = \"%s\"\nprofile = \"minimal\"\nauto_self_update = \"disable\"\n" \
        "$TOOLCHAIN_NAME" >"$RUSTUP_HOME/settings.toml"
      for tool in "$dest"/bin/*; do
        ln -sf rustup "$CARGO_HOME/bin/$(basename "$tool")"
      done
    else
      for tool in "$dest"/bin/*; do
        ln -sf "$tool" "$CARGO_HOME/bin/$(basename "$tool")"
      done
    fi
    chmod -R a+w "$RUSTUP_HOME" "$CARGO_HOME"
    PATH=$CARGO_HOME/bin:$PATH cargo --version
    PATH=$CARGO_HOME/bin:$PATH rustc --version
  '
docker commit \
  --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
  --change 'ENV CARGO_HOME=/usr/local/cargo' \
  --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV RUST_VERSION=$RUST_VERSION" \
  --change 'CMD ["bash"]' \
  "$BUILDER" "$RUST_TAG" >/dev/null

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$SLIM_TAG"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$RUST_TAG"
echo "local-base-images: done; now: docker build --network host -t slotpool ."
