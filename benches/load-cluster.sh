#!/usr/bin/env bash
# `make load-cluster`: a benchmark, not a test. Durable request/release over HTTP against
# one node and then against a three-node cluster on this machine, side by side in one run,
# and what a failover costs clients.
#
#   1. Builds the release binaries once (slotpool, slotpool-loadgen).
#   2. (a) A single node (no [cluster]), through benches/load.sh: CLIENTS connections of
#      request/release pairs for DURATION seconds, every request a durable state change.
#   3. A three-node cluster (tools/cluster.sh, durability fsync, no nginx) on free loopback
#      ports; the same load, each run on a product of its own, (b) against the leader and
#      (c) against a follower (which forwards every request to the leader).
#   4. Failover: the same load at FAILOVER_RATE requests/s (half the leader's throughput
#      by default) against a follower, plus PROBES probe clients (each one user's
#      request/release, one request at a time, its outcome and instant recorded); after
#      FAILOVER_AFTER seconds the leader is killed with SIGKILL. Reported: from the first
#      refused request (a 503 or 502, a refused or reset connection, a timeout) to the
#      first success after it, and from the kill to that success; then the killed node is
#      restarted and the time it takes to serve again (caught up) is reported.
#
# Prints one table:
#
#   target            node   requests/s   p50 ms   p99 ms   vs single   errors
#   single node          -        41534     0.83     4.78        1.00        0
#   cluster leader       1        ...
#   cluster follower     2        ...
#   load-cluster: failover: ...
#
# Settings, from the environment or as KEY=VALUE arguments:
#   CLIENTS=64  DURATION=10  RATE=max (closed loop: capacity; or requests/s)  THREADS=1
#   SPARE=2 (users per connection)  FAILOVER_DURATION=12  FAILOVER_AFTER=3
#   FAILOVER_RATE= (default: half the leader's throughput)  PROBES=8
#   ELECTION_TIMEOUT_MS=300  SKIP_BUILD=1 (use the existing target/release binaries)
#   KEEP_DATA=1 (keep the temporary folder: logs, data, probe records)
# Exit status: 0 when every run completed, every request of (a), (b) and (c) succeeded and
# clients were served again after the failover; 1 otherwise.
set -euo pipefail

for arg in "$@"; do
    case "$arg" in
        CLIENTS=*|DURATION=*|RATE=*|THREADS=*|SPARE=*|FAILOVER_DURATION=*|FAILOVER_AFTER=*|FAILOVER_RATE=*|PROBES=*|ELECTION_TIMEOUT_MS=*|SKIP_BUILD=*|KEEP_DATA=*)
            export "${arg?}" ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "load-cluster: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
DURATION=${DURATION%s}
RATE=${RATE:-max}
THREADS=${THREADS:-1}
SPARE=${SPARE:-2}
FAILOVER_DURATION=${FAILOVER_DURATION:-12}
FAILOVER_AFTER=${FAILOVER_AFTER:-3}
FAILOVER_RATE=${FAILOVER_RATE:-}
PROBES=${PROBES:-8}
ELECTION_TIMEOUT_MS=${ELECTION_TIMEOUT_MS:-300}
NODES=3

die() { echo "load-cluster: $*" >&2; exit 1; }
say() { echo "load-cluster: $*" >&2; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
for v in CLIENTS DURATION THREADS SPARE FAILOVER_DURATION FAILOVER_AFTER PROBES ELECTION_TIMEOUT_MS; do
    is_count "${!v}" || die "$v must be a positive integer, not '${!v}'"
done
[[ "$RATE" == max ]] || is_count "$RATE" || die "RATE must be a positive integer or max, not '$RATE'"
[[ -z "$FAILOVER_RATE" ]] || is_count "$FAILOVER_RATE" || die "FAILOVER_RATE must be a positive integer, not '$FAILOVER_RATE'"
(( FAILOVER_AFTER + 3 <= FAILOVER_DURATION )) || die "FAILOVER_DURATION must leave at least 3 s after FAILOVER_AFTER"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v curl >/dev/null 2>&1 || die "curl is not installed (apt-get install curl)"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed (the failover probe and JSON reading use it)"

# --- build, once -----------------------------------------------------------------------
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/slotpool"
LOADGEN="${CARGO_TARGET_DIR:-$ROOT/target}/release/slotpool-loadgen"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    say "cargo build --release"
    cargo build --release --quiet -p slotpool -p slotpool-loadgen || die "release build failed"
fi
[[ -x "$BIN" ]] || die "no release binary at $BIN"
[[ -x "$LOADGEN" ]] || die "no load generator at $LOADGEN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/slotpool-load-cluster.XXXXXX")
export CLUSTER_DIR="$WORK/cluster" NGINX=0 DURABILITY=fsync SLOTPOOL_BIN="$BIN" SLOTPOOL_LOG=warn
export ELECTION_TIMEOUT_MS
CLUSTER_UP=""
# shellcheck disable=SC2317  # the EXIT trap runs it
cleanup() {
    local rc=$?
    if [[ -n "$CLUSTER_UP" ]]; then bash "$ROOT/tools/cluster.sh" stop >/dev/null 2>&1 || true; fi
    if [[ "${KEEP_DATA:-}" == 1 ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- (a) the single node -----------------------------------------------------------------
say "(a) single node: benches/load.sh CLIENTS=$CLIENTS DURATION=$DURATION RATE=$RATE DURABILITY=fsync"
set +e
SINGLE=$(SKIP_BUILD=1 KEEP_DATA='' CLIENTS="$CLIENTS" DURATION="$DURATION" RATE="$RATE" THREADS="$THREADS" \
    SPARE="$SPARE" DURABILITY=fsync bash "$ROOT/benches/load.sh" 2>"$WORK/single.log")
SINGLE_RC=$?
set -e
# `load: <ops>/s p50=<ms> p99=<ms> clients=<n>`
if [[ "$SINGLE" =~ load:\ ([0-9.]+)/s\ p50=([0-9.]+)\ p99=([0-9.]+) ]]; then
    S_OPS=${BASH_REMATCH[1]} S_P50=${BASH_REMATCH[2]} S_P99=${BASH_REMATCH[3]}
else
    cat "$WORK/single.log" >&2
    die "the single-node run gave no result (exit $SINGLE_RC)"
fi
# `load: non-2xx responses: N; socket errors: connect a, read b, write c, timeout d`
S_ERR=$(awk '/^load: non-2xx responses:/ { gsub(/[;,]/, " "); print $4 + $8 + $10 + $12 + $14; found = 1 }
    END { if (!found) print "?" }' "$WORK/single.log")
(( SINGLE_RC == 0 )) || { tail -n 5 "$WORK/single.log" >&2; say "the single-node run exited $SINGLE_RC"; }

# --- the cluster -------------------------------------------------------------------------
port_free() {
    python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}
bases_found=""
for _ in $(seq 20); do
    HTTP_BASE=$(( 20000 + RANDOM % 20000 )); RAFT_BASE=$(( HTTP_BASE + 20000 ))
    ok=1
    for (( i = 1; i <= NODES; i++ )); do
        if ! port_free $(( HTTP_BASE + i )) || ! port_free $(( RAFT_BASE + i )); then ok=""; break; fi
    done
    if [[ -n "$ok" ]]; then bases_found=1; break; fi
done
[[ -n "$bases_found" ]] || die "found no free ports for the cluster"
export HTTP_BASE RAFT_BASE NODES
node_url() { echo "http://127.0.0.1:$(( HTTP_BASE + $1 ))"; }

say "cluster: $NODES nodes, HTTP 127.0.0.1:$(( HTTP_BASE + 1 ))-$(( HTTP_BASE + NODES )), durability fsync"
CLUSTER_UP=1
bash "$ROOT/tools/cluster.sh" start 2>"$WORK/cluster-start.log" || { cat "$WORK/cluster-start.log" >&2; die "the cluster did not start"; }
TOKEN=$(cat "$CLUSTER_DIR/admin_token")

# The leader as node `$1` sees it (empty if none).
leader_seen_by() {
    curl -s -m 2 -H "Authorization: Bearer $TOKEN" "$(node_url "$1")/admin/v1/cluster" 2>/dev/null \
        | python3 -c 'import json,sys; l=json.load(sys.stdin).get("leader"); print(l if l is not None else "")' 2>/dev/null || true
}
# The leader every live node agrees on, within 30 s (`$1`: a node to leave out, e.g. killed).
agreed_leader() {
    local skip=${1:-0} deadline=$(( SECONDS + 30 )) i seen first agree
    while (( SECONDS < deadline )); do
        first=""; agree=1
        for (( i = 1; i <= NODES; i++ )); do
            (( i == skip )) && continue
            seen=$(leader_seen_by "$i")
            if [[ -z "$seen" ]] || { [[ -n "$first" ]] && [[ "$seen" != "$first" ]]; }; then agree=""; break; fi
            first=$seen
        done
        if [[ -n "$agree" && -n "$first" ]]; then echo "$first"; return 0; fi
        sleep 0.2
    done
    return 1
}

USERS=$(( CLIENTS * SPARE ))
# A product of its own for each run, with its members (the load's u0.. and the probes' p0..).
setup_product() {
    local product=$1 base code codes enrolled want=$(( USERS + PROBES ))
    base=$(node_url "$2")
    code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' \
        --data "{\"kind\":\"jira\",\"licence_tier\":$want,\"shared_slots\":$want}" \
        "$base/admin/v1/products/$product") || true
    [[ "$code" == 201 || "$code" == 200 ]] || { cat "$WORK/reply" >&2; die "creating product $product answered $code"; }
    {
        for (( u = 0; u < USERS; u++ )); do
            echo "url = \"$base/admin/v1/products/$product/members/u$u\""; echo 'output = "/dev/null"'
        done
        for (( u = 0; u < PROBES; u++ )); do
            echo "url = \"$base/admin/v1/products/$product/members/p$u\""; echo 'output = "/dev/null"'
        done
    } >"$WORK/enrol.curl"
    codes=$(curl -s -X PUT -H "Authorization: Bearer $TOKEN" -w '%{http_code}\n' -K "$WORK/enrol.curl") || true
    enrolled=$(grep -c '^204$' <<<"$codes" || true)
    (( enrolled == want )) || die "enrolled $enrolled of $want users in $product (answers: $(sort <<<"$codes" | uniq -c | tr -s ' \n' ' '))"
}

# Runs the load generator; sets R_OPS R_P50 R_P99 R_ERR (non-2xx + socket errors).
run_load() {
    local url=$1 product=$2 rate=$3 duration=$4 out=$5 result rc
    set +e
    "$LOADGEN" --url "$url" --product "$product" --connections "$CLIENTS" \
        --users-per-connection "$SPARE" --duration "$duration" --rate "$rate" --threads "$THREADS" \
        >"$out" 2>&1
    rc=$?
    set -e
    result=$(grep '^LOADRESULT ' "$out" || true)
    if (( rc != 0 )) || [[ -z "$result" ]]; then cat "$out" >&2; die "the load generator failed (exit $rc)"; fi
    declare -A R
    local kv
    for kv in ${result#LOADRESULT }; do R[${kv%%=*}]=${kv#*=}; done
    R_OPS=$(awk -v n="${R[requests]}" -v d="${R[duration_us]}" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
    R_P50=$(awk -v v="${R[p50_us]}" 'BEGIN { printf "%.2f", v / 1000 }')
    R_P99=$(awk -v v="${R[p99_us]}" 'BEGIN { printf "%.2f", v / 1000 }')
    R_ERR=$(( R[non2xx] + R[connect] + R[read] + R[write] + R[timeout] ))
}

LEADER=$(agreed_leader) || die "the nodes agreed on no leader within 30 s"
FOLLOWER=$(( LEADER % NODES + 1 ))

say "(b) cluster through the leader (node $LEADER)"
setup_product load-leader "$LEADER"
run_load "$(node_url "$LEADER")" load-leader "$RATE" "$DURATION" "$WORK/leader.out"
L_NODE=$LEADER L_OPS=$R_OPS L_P50=$R_P50 L_P99=$R_P99 L_ERR=$R_ERR

LEADER=$(agreed_leader) || die "the nodes agreed on no leader within 30 s"
FOLLOWER=$(( LEADER % NODES + 1 ))
say "(c) cluster through a follower (node $FOLLOWER; leader $LEADER)"
setup_product load-follower "$LEADER"
run_load "$(node_url "$FOLLOWER")" load-follower "$RATE" "$DURATION" "$WORK/follower.out"
F_NODE=$FOLLOWER F_OPS=$R_OPS F_P50=$R_P50 F_P99=$R_P99 F_ERR=$R_ERR

# --- failover ------------------------------------------------------------------------------
LEADER=$(agreed_leader) || die "the nodes agreed on no leader within 30 s"
FOLLOWER=$(( LEADER % NODES + 1 ))
[[ -n "$FAILOVER_RATE" ]] || FAILOVER_RATE=$(( L_OPS / 2 > 1000 ? L_OPS / 2 : 1000 ))
setup_product load-failover "$LEADER"

# The probes: each one user, request/release one at a time against the follower, every
# outcome written as `<sent> <answered> <status>` (unix seconds; status 0: no answer).
cat >"$WORK/probe.py" <<'EOF'
import http.client, sys, threading, time
host, port, product, probes, duration, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
end = time.time() + duration
path = f"/api/v1/products/{product}/slot"
records = []
lock = threading.Lock()

def probe(user):
    conn, holding, mine = None, False, []
    while time.time() < end:
        method = "DELETE" if holding else "POST"
        sent = time.time()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request(method, path, headers={"X-Slotpool-User": user, "Content-Length": "0"})
            r = conn.getresponse()
            r.read()
            status = r.status
            if (r.getheader("Connection") or "").lower() == "close":
                conn.close()
                conn = None
        except Exception:
            status = 0
            if conn is not None:
                conn.close()
            conn = None
        mine.append((sent, time.time(), status))
        if 200 <= status < 300 or 400 <= status < 500:
            # A success flips the user's state; a 4xx says it was not what we thought
            # (an indeterminate refusal that took effect after all): flip back in step.
            holding = not holding
        else:
            time.sleep(0.005)
    with lock:
        records.extend(mine)

threads = [threading.Thread(target=probe, args=(f"p{k}",)) for k in range(probes)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(out, "w") as f:
    for sent, answered, status in sorted(records):
        f.write(f"{sent:.6f} {answered:.6f} {status}\n")
EOF

say "failover: load at $FAILOVER_RATE/s and $PROBES probes on node $FOLLOWER; SIGKILL to the leader (node $LEADER) after ${FAILOVER_AFTER}s"
LEADER_PID=$(cat "$CLUSTER_DIR/n$LEADER/pid")
kill -0 "$LEADER_PID" 2>/dev/null || die "the leader's process ($LEADER_PID) is not running"
FAILOVER_LOAD_RC=0
( run_load "$(node_url "$FOLLOWER")" load-failover "$FAILOVER_RATE" "$FAILOVER_DURATION" "$WORK/failover.out" \
    && echo "$R_OPS $R_ERR" >"$WORK/failover.result" ) &
LOAD_PID=$!
python3 "$WORK/probe.py" 127.0.0.1 $(( HTTP_BASE + FOLLOWER )) load-failover "$PROBES" "$FAILOVER_DURATION" "$WORK/probe.records" &
PROBE_PID=$!
sleep "$FAILOVER_AFTER"
KILLED_AT=$(date +%s.%N)
kill -KILL "$LEADER_PID"
rm -f "$CLUSTER_DIR/n$LEADER/pid"
wait "$LOAD_PID" || FAILOVER_LOAD_RC=$?
wait "$PROBE_PID" || die "the failover probe failed"
NEW_LEADER=$(agreed_leader "$LEADER" || echo none)

# First refusal (answered at or after the kill: a 502/503/504 or no answer) and the first
# success answered after it.
read -r FIRST_REFUSAL FIRST_SUCCESS REFUSED ANSWERED < <(awk -v k="$KILLED_AT" '
    $2 >= k && ($3 == 0 || $3 == 502 || $3 == 503 || $3 == 504) { refused++; if (fr == "") fr = $2 }
    $2 >= k { n++ }
    END { print (fr == "" ? "-" : fr), "-", refused + 0, n + 0 }' "$WORK/probe.records")
if [[ "$FIRST_REFUSAL" != - ]]; then
    FIRST_SUCCESS=$(awk -v f="$FIRST_REFUSAL" '$3 >= 200 && $3 < 300 && $2 > f { if (s == "" || $2 < s) s = $2 } END { print (s == "" ? "-" : s) }' "$WORK/probe.records")
fi
FAILOVER_OK=1
if [[ "$FIRST_REFUSAL" == - ]]; then
    FAILOVER_LINE="no probe request was refused after the kill (the follower kept answering)"
elif [[ "$FIRST_SUCCESS" == - ]]; then
    FAILOVER_LINE="refused from $(awk -v a="$FIRST_REFUSAL" -v k="$KILLED_AT" 'BEGIN { printf "%.3f", a - k }') s after the kill to the end of the run: NO SUCCESS AFTER THE FAILOVER"
    FAILOVER_OK=""
else
    FAILOVER_LINE=$(awk -v a="$FIRST_REFUSAL" -v b="$FIRST_SUCCESS" -v k="$KILLED_AT" -v r="$REFUSED" -v n="$ANSWERED" \
        'BEGIN { printf "first refusal -> first success %.3f s; kill -> first success %.3f s; %d of %d probe requests after the kill refused", b - a, b - k, r, n }')
fi
FO_LOAD="-"
[[ -f "$WORK/failover.result" ]] && read -r FO_OPS FO_ERR <"$WORK/failover.result" && FO_LOAD="$FO_OPS/s served, $FO_ERR refused or failed"

# The killed node comes back and catches up: ready (it knows the leader), then applied up
# to what the leader had committed when it restarted.
index_of() { # `$2` (commit_index, applied_index) of node `$1`, or empty
    curl -s -m 2 -H "Authorization: Bearer $TOKEN" "$(node_url "$1")/admin/v1/cluster" 2>/dev/null \
        | python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print(v if isinstance(v, int) else "")' "$2" 2>/dev/null || true
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
REJOIN="not ready within 30 s"
TARGET=""
[[ "$NEW_LEADER" == none ]] || TARGET=$(index_of "$NEW_LEADER" commit_index)
RESTARTED_AT=$(date +%s.%N)
if bash "$ROOT/tools/cluster.sh" node "$LEADER" start 2>>"$WORK/cluster-start.log"; then
    for _ in $(seq 300); do
        if [[ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$(node_url "$LEADER")/readyz" || true)" == 200 ]]; then
            REJOIN="ready after $(since "$RESTARTED_AT") s"; break
        fi
        sleep 0.1
    done
    if [[ "$REJOIN" == ready* && -n "$TARGET" ]]; then
        caught=""
        for _ in $(seq 300); do
            applied=$(index_of "$LEADER" applied_index)
            if [[ -n "$applied" ]] && (( applied >= TARGET )); then caught=1; break; fi
            sleep 0.1
        done
        if [[ -n "$caught" ]]; then
            REJOIN="$REJOIN, applied up to the leader's commit index $TARGET after $(since "$RESTARTED_AT") s"
        else
            REJOIN="$REJOIN, NOT caught up with the leader's commit index $TARGET within 30 s"
        fi
    fi
fi

bash "$ROOT/tools/cluster.sh" stop 2>/dev/null || true
CLUSTER_UP=""

# --- report --------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$S_OPS" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
{
    echo "load-cluster: $CLIENTS clients, ${DURATION}s each, rate=$RATE, durability=fsync, $NODES nodes on this machine ($(nproc) CPUs)"
    printf '%-18s %5s %12s %8s %8s %10s %8s\n' target node requests/s "p50 ms" "p99 ms" "vs single" errors
    printf '%-18s %5s %12s %8s %8s %10s %8s\n' "single node" - "$S_OPS" "$S_P50" "$S_P99" 1.00 "$S_ERR"
    printf '%-18s %5s %12s %8s %8s %10s %8s\n' "cluster leader" "$L_NODE" "$L_OPS" "$L_P50" "$L_P99" "$(ratio "$L_OPS")" "$L_ERR"
    printf '%-18s %5s %12s %8s %8s %10s %8s\n' "cluster follower" "$F_NODE" "$F_OPS" "$F_P50" "$F_P99" "$(ratio "$F_OPS")" "$F_ERR"
    echo "load-cluster: failover: SIGKILL to leader $LEADER under load on node $FOLLOWER: $FAILOVER_LINE; new leader: $NEW_LEADER; load during it: $FO_LOAD; node $LEADER restarted: $REJOIN"
}

rc=0
[[ "$S_ERR" == 0 && "$L_ERR" == 0 && "$F_ERR" == 0 && "$SINGLE_RC" == 0 ]] || { say "FAILED: some requests of (a), (b) or (c) did not succeed (KEEP_DATA=1 keeps the logs)"; rc=1; }
[[ -n "$FAILOVER_OK" && "$NEW_LEADER" != none ]] || { say "FAILED: clients were not served again after the failover"; rc=1; }
(( FAILOVER_LOAD_RC == 0 )) || { say "FAILED: the load generator of the failover run failed"; rc=1; }
exit "$rc"
