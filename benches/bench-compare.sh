#!/usr/bin/env bash
# `make bench-compare`: slotpool's durable request/release against Redis with
# `appendonly yes` + `appendfsync always` running the same toggle, side by side, in one run
# on one machine, and prints both and the ratio in one table.
#
# Redis: a local `redis-server` (Debian's package `redis-server`; `redis-benchmark` comes
# with `redis-tools`) on a temporary directory and a free loopback port, every write
# fsynced before the reply. The toggle is a Lua script (EVALSHA): a user who holds a slot
# releases it, one who does not takes a free one (SISMEMBER, then SREM + INCR or SADD +
# DECR): one durable change per call, as each of slotpool's requests is.
# `redis-benchmark -c CLIENTS` drives it over random users (`__rand_int__`, USERS of them).
#
# slotpool: `benches/load.sh RATE=max` (request/release pairs at CLIENTS connections,
# `durability = "fsync"`), which also prints the server's CPU per request and the bytes
# that reached the disk per event.
#
# The floor: `slotpool-floor` (benches/loadgen/src/floor.rs) answers the same requests
# with fixed answers and does no work, driven by the same load generator: `floor-tcp`
# (hand-written HTTP on one thread: what the kernel's loopback TCP costs) and
# `floor-actix` (actix-web with one worker and an empty handler: slotpool's HTTP stack).
# No HTTP server on this machine goes above the first; what slotpool spends above the
# second is its own work.
#
# All run ROUNDS times, alternating (Redis, slotpool, the floors, Redis, ...), so that a
# slow stretch of the machine costs each; the table shows each round and the medians.
#
# Settings, from the environment or as KEY=VALUE arguments:
#   CLIENTS=64     concurrent connections of both
#   DURATION=10    seconds per slotpool run; Redis runs about as long (a request count
#                  from a first short run)
#   ROUNDS=3       alternating rounds
#   BEFORE=PATH    also run this other slotpool binary (e.g. an older build) in each
#                  round, for a before/after in the same run
#   FLOOR=0        skip the two floor rows
#   SKIP_BUILD=1   use the existing target/release binaries
# Needs: redis-server, redis-benchmark, curl, python3 (apt-get install redis-server
# redis-tools curl python3). `.ci/run` does not run this.
set -euo pipefail

for arg in "$@"; do
    case "$arg" in
        CLIENTS=*|DURATION=*|ROUNDS=*|BEFORE=*|FLOOR=*|SKIP_BUILD=*) export "${arg?}" ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-compare: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
FLOOR=${FLOOR:-1}
USERS=$(( CLIENTS * 2 ))

die() { echo "bench-compare: $*" >&2; exit 1; }
for tool in redis-server redis-benchmark redis-cli curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (apt-get install redis-server redis-tools curl python3)"
done
[[ -z "${BEFORE:-}" || -x "$BEFORE" ]] || die "BEFORE=$BEFORE is not an executable"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    echo "bench-compare: cargo build --release" >&2
    cargo build --release --quiet -p slotpool -p slotpool-loadgen || die "release build failed"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/slotpool-compare.XXXXXX")
REDIS_PID=""
FLOOR_PID=""
cleanup() {
    local rc=$?
    [[ -z "$REDIS_PID" ]] || { kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; }
    [[ -z "$FLOOR_PID" ]] || { kill "$FLOOR_PID" 2>/dev/null || true; wait "$FLOOR_PID" 2>/dev/null || true; }
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# The block device the data lives on, for the sectors it wrote (field 7 of its stat).
disk_stat() {
    local dev
    dev=$(stat -c '%d' "$1")
    echo "/sys/dev/block/$(( dev >> 8 )):$(( dev & 255 ))/stat"
}
sectors() { awk '{ print $7 }' "$1" 2>/dev/null || echo 0; }

SCRIPT='local held = redis.call("SISMEMBER", KEYS[1], ARGV[1])
if held == 1 then
  redis.call("SREM", KEYS[1], ARGV[1]); redis.call("INCR", KEYS[2]); return 0
end
local free = tonumber(redis.call("GET", KEYS[2]) or "0")
if free > 0 then
  redis.call("SADD", KEYS[1], ARGV[1]); redis.call("DECR", KEYS[2]); return 1
end
return -1'

redis_round() { # prints: ops/s p50_ms p99_ms cpu_us_per_op bytes_per_op
    local port dir pid ticks0 ticks1 s0 s1 n out stat
    port=$(free_port)
    dir="$WORK/redis-$1"
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
        --appendfsync always --save '' --daemonize no --logfile "$dir/log" &
    REDIS_PID=$!
    pid=$REDIS_PID
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$port" set free "$USERS" >/dev/null
    local sha
    sha=$(redis-cli -p "$port" script load "$SCRIPT")
    n=$2
    stat=$(disk_stat "$dir")
    ticks0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    s0=$(sectors "$stat")
    out=$(redis-benchmark -p "$port" -c "$CLIENTS" -n "$n" -r "$USERS" --csv \
        evalsha "$sha" 2 holders free "u:__rand_int__")
    s1=$(sectors "$stat")
    ticks1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    REDIS_PID=""
    # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    tail -n 1 <<<"$out" | tr -d '"' | awk -F, -v n="$n" -v t="$(( ticks1 - ticks0 ))" -v hz="$(getconf CLK_TCK)" \
        -v sec="$(( s1 - s0 ))" '{ printf "%.0f %.2f %.2f %.1f %.0f\n", $2, $5, $7, t / hz * 1e6 / n, sec * 512 / n }'
}

slotpool_round() { # $1: binary; prints: ops/s p50_ms p99_ms cpu_us_per_req bytes_per_event
    local out
    out=$(SLOTPOOL_BIN="$1" SKIP_BUILD=1 RATE=max CLIENTS="$CLIENTS" DURATION="$DURATION" \
        bash benches/load.sh 2>&1) || { echo "$out" >&2; die "slotpool's load run failed"; }
    awk '
        /^load: [0-9]+\/s/ { split($2, a, "/"); ops = a[1]; sub("p50=", "", $3); p50 = $3; sub("p99=", "", $4); p99 = $4 }
        /server CPU/ { for (i = 1; i <= NF; i++) if ($i == "CPU") cpu = $(i + 1) }
        /bytes to the disk/ { for (i = 1; i <= NF; i++) if ($i == "disk:") b = $(i + 1) }
        END { printf "%s %s %s %s %s\n", ops, p50, p99, cpu, (b == "" ? "?" : b) }' <<<"$out"
}

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/release"
floor_round() { # $1: tcp | actix; prints: ops/s p50_ms p99_ms cpu_us_per_req - (no disk)
    local port pid ticks0 ticks1 result
    port=$(free_port)
    "$TARGET/slotpool-floor" --listen "127.0.0.1:$port" --kind "$1" >"$WORK/floor.log" 2>&1 &
    FLOOR_PID=$!
    pid=$FLOOR_PID
    for _ in $(seq 100); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$port/api/v1/products/load/slot" || true)" == 204 ]] && break
        sleep 0.1
    done
    ticks0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    result=$("$TARGET/slotpool-loadgen" --url "http://127.0.0.1:$port" --connections "$CLIENTS" \
        --duration "$DURATION" --rate max 2>&1 | grep '^LOADRESULT ') || die "the load generator failed against the $1 floor"
    ticks1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    FLOOR_PID=""
    awk -v t="$(( ticks1 - ticks0 ))" -v hz="$(getconf CLK_TCK)" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
        printf "%.0f %.2f %.2f %.1f -\n", r["requests"] / (r["duration_us"] / 1e6), r["p50_us"] / 1000,
            r["p99_us"] / 1000, t / hz * 1e6 / r["requests"] }' <<<"$result"
}

# Redis gets a request count that lasts about DURATION seconds, from a short first run.
probe=$(redis_round probe 20000)
rps=${probe%% *}
N=$(( rps * DURATION ))
(( N > 20000 )) || N=20000
echo "bench-compare: $ROUNDS rounds, $CLIENTS clients; Redis $N calls per round (~${DURATION}s), slotpool ${DURATION}s" >&2

declare -a RED SP BF FT FA
for (( r = 1; r <= ROUNDS; r++ )); do
    RED[r]=$(redis_round "$r" "$N")
    SP[r]=$(slotpool_round "${SLOTPOOL_BIN:-$ROOT/target/release/slotpool}")
    [[ -z "${BEFORE:-}" ]] || BF[r]=$(slotpool_round "$BEFORE")
    if [[ "$FLOOR" != 0 ]]; then
        FT[r]=$(floor_round tcp)
        FA[r]=$(floor_round actix)
    fi
    echo "bench-compare: round $r: redis ${RED[r]}; slotpool ${SP[r]}${BEFORE:+; before ${BF[r]}}${FT[r]:+; floor-tcp ${FT[r]}; floor-actix ${FA[r]}}" >&2
done

{
    for (( r = 1; r <= ROUNDS; r++ )); do
        echo "redis $r ${RED[r]}"
        echo "slotpool $r ${SP[r]}"
        [[ -z "${BEFORE:-}" ]] || echo "before $r ${BF[r]}"
        [[ -z "${FT[r]:-}" ]] || echo "floor-tcp $r ${FT[r]}"
        [[ -z "${FA[r]:-}" ]] || echo "floor-actix $r ${FA[r]}"
    done
} >"$WORK/rows"
python3 - "$WORK/rows" <<'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def num(x):
    try:
        return float(x)
    except ValueError:
        return float("nan")
by = {}
for who, r, *vals in rows:
    by.setdefault(who, []).append([num(v) for v in vals])
head = ("", "round", "ops/s", "p50 ms", "p99 ms", "CPU us/op", "disk B/op")
print("%-11s %5s %9s %7s %7s %9s %9s" % head)
def line(who, r, v):
    disk = "%9.0f" % v[4] if v[4] == v[4] else "%9s" % "-"
    print("%-11s %5s %9.0f %7.2f %7.2f %9.1f %s" % (who, r, *v[:4], disk))
for who, r, *vals in rows:
    line(who, r, [num(x) for x in vals])
med = {w: [statistics.median(c) for c in zip(*vs)] for w, vs in by.items()}
for w, v in med.items():
    line(w, "med", v)
print("slotpool / redis (median ops/s): %.2fx; CPU per change %.1f us vs %.1f us"
      % (med["slotpool"][0] / med["redis"][0], med["slotpool"][3], med["redis"][3]))
if "floor-actix" in med:
    print("slotpool / floor-actix (median ops/s): %.2fx; slotpool's own work %.1f us per request above actix-web's %.1f"
          % (med["slotpool"][0] / med["floor-actix"][0], med["slotpool"][3] - med["floor-actix"][3],
             med["floor-actix"][3]))
    print("floors: tcp %.0f/s, actix %.0f/s; 1.5x redis would be %.0f/s"
          % (med["floor-tcp"][0], med["floor-actix"][0], 1.5 * med["redis"][0]))
if "before" in med:
    print("slotpool / before (median ops/s): %.2fx; CPU per request %.1f -> %.1f us; disk %.0f -> %.0f B/event"
          % (med["slotpool"][0] / med["before"][0], med["before"][3], med["slotpool"][3],
             med["before"][4], med["slotpool"][4]))
EOF
