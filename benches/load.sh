#!/usr/bin/env bash
# `make load`: end-to-end load test of the release binary over HTTP.
#
# Builds the release binaries, starts the server on a temporary data dir and a free loopback
# port, creates a product and enrols its users through the admin API, then drives CLIENTS
# concurrent keep-alive connections for DURATION seconds through request/release pairs
# (POST / DELETE /api/v1/products/load/slot, each connection acting for users of its own)
# with the load generator `slotpool-loadgen` (benches/loadgen). Every request is a durable
# state change, which the journal's event counter (/metrics `slotpool_journal_events_total`)
# confirms. Ends with one line:
#
#   load: <ops>/s p50=<ms> p99=<ms> clients=<n>
#
# By default the requests come at a fixed rate (RATE=22000 per second, open loop), and
# latency counts from when a request was due, so a stall of the server costs every request
# it held up (no coordinated omission). RATE=max sends each connection's next request as
# soon as the previous answer is in (closed loop): it measures capacity, at saturation.
#
# Settings, from the environment or as KEY=VALUE arguments (`bash benches/load.sh
# RATE=max`; `make load RATE=max` works too):
#   CLIENTS=64          concurrent connections
#   DURATION=10         seconds of load (after setup)
#   RATE=22000          requests per second over all connections, or max
#   DURABILITY=fsync    fsync | process (the server's --durability)
#   THREADS=1           load generator threads
#   SPARE=2             users per connection; the pool gets CLIENTS * SPARE members and
#                       shared slots
#   HTTP_WORKERS=, ACTOR_THREADS=   if set, written into a --config file for the server
#   SKIP_BUILD=1        use the existing target/release binaries
#   SLOTPOOL_BIN=PATH   run this server binary instead of target/release/slotpool
#   KEEP_DATA=1         keep the temporary directory (journal, server log) and print it
#   LATENCY_LOG=FILE    write every request's `<from us> <latency us>` to FILE, in time
#                       order (when the slow ones came: bursts behind stalls, or a spread)
# Exit status: 0 on success; 1 if any request failed (non-2xx, socket errors or timeouts),
# if the server did not stop cleanly, or on any setup failure.
set -euo pipefail

for arg in "$@"; do
    case "$arg" in
        CLIENTS=*|DURATION=*|RATE=*|DURABILITY=*|THREADS=*|SPARE=*|HTTP_WORKERS=*|ACTOR_THREADS=*|SKIP_BUILD=*|KEEP_DATA=*)
            export "${arg?}" ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "load: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
DURATION=${DURATION%s}
RATE=${RATE:-22000}
DURABILITY=${DURABILITY:-fsync}
THREADS=${THREADS:-1}
SPARE=${SPARE:-2}
PRODUCT=load

die() { echo "load: $*" >&2; exit 1; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_count "$CLIENTS" || die "CLIENTS must be a positive integer, not '$CLIENTS'"
is_count "$DURATION" || die "DURATION must be a positive number of seconds, not '$DURATION'"
is_count "$THREADS" || die "THREADS must be a positive integer, not '$THREADS'"
is_count "$SPARE" || die "SPARE must be a positive integer, not '$SPARE'"
[[ "$RATE" == max ]] || is_count "$RATE" || die "RATE must be a positive integer or max, not '$RATE'"
case "$DURABILITY" in fsync|process) ;; *) die "DURABILITY must be fsync or process, not '$DURABILITY'" ;; esac

# A relative LATENCY_LOG names a file where the caller stands, not in the repository.
[[ -z "${LATENCY_LOG:-}" || "$LATENCY_LOG" == /* ]] || LATENCY_LOG="$PWD/$LATENCY_LOG"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# --- tools ---------------------------------------------------------------------------
command -v curl >/dev/null 2>&1 || die "curl is not installed (sudo apt-get install curl)"

# --- build ---------------------------------------------------------------------------
BIN="${SLOTPOOL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/slotpool}"
LOADGEN="${CARGO_TARGET_DIR:-$ROOT/target}/release/slotpool-loadgen"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    echo "load: cargo build --release" >&2
    cargo build --release --quiet -p slotpool -p slotpool-loadgen || die "release build failed"
fi
[[ -x "$BIN" ]] || die "no release binary at $BIN"
[[ -x "$LOADGEN" ]] || die "no load generator at $LOADGEN"

# --- server --------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/slotpool-load.XXXXXX")
DATA="$WORK/data"
LOG="$WORK/server.log"
SERVER_PID=""

stop_server() {
    # SIGTERM drains, flushes and exits 0; give it a while, then insist.
    local pid=$SERVER_PID status=0
    [[ -n "$pid" ]] || return 0
    SERVER_PID=""
    if ! kill -TERM "$pid" 2>/dev/null; then
        # Already gone: its exit status says whether it died.
        wait "$pid" 2>/dev/null || status=$?
        return $(( status == 0 ? 1 : status ))
    fi
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "load: the server did not stop within 15 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || status=$?
    return "$status"
}

cleanup() {
    local rc=$?
    stop_server || true
    if [[ "${KEEP_DATA:-}" == 1 ]]; then
        echo "load: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' && return
    fi
    local p
    for _ in $(seq 50); do
        p=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    return 1
}

TOKEN="load-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
CONFIG_ARGS=()
if [[ -n "${HTTP_WORKERS:-}" || -n "${ACTOR_THREADS:-}" ]]; then
    {
        [[ -z "${HTTP_WORKERS:-}" ]] || echo "http_workers = $HTTP_WORKERS"
        [[ -z "${ACTOR_THREADS:-}" ]] || echo "actor_threads = $ACTOR_THREADS"
    } >"$WORK/slotpool.toml"
    CONFIG_ARGS=(--config "$WORK/slotpool.toml")
fi

BASE=""
for attempt in 1 2 3; do
    PORT=$(free_port) || die "found no free port"
    BASE="http://127.0.0.1:$PORT"
    SLOTPOOL_ADMIN_TOKEN="$TOKEN" SLOTPOOL_LOG=warn \
        "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --durability "$DURABILITY" \
        "${CONFIG_ARGS[@]}" >"$LOG" 2>&1 &
    SERVER_PID=$!
    ready=""
    for _ in $(seq 300); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz" || true)" == 200 ]]; then
            ready=1; break
        fi
        sleep 0.1
    done
    [[ -n "$ready" ]] && break
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$LOG" >&2; die "the server did not become ready within 30 s"
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    grep -q "cannot listen" "$LOG" || { cat "$LOG" >&2; die "the server failed to start"; }
    (( attempt < 3 )) || { cat "$LOG" >&2; die "the server failed to start"; }
done

# --- product and members -------------------------------------------------------------
USERS=$(( CLIENTS * SPARE ))
admin_put() {
    local code
    code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X PUT \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        ${2:+--data "$2"} "$BASE$1") || true
    echo "$code"
}
code=$(admin_put "/admin/v1/products/$PRODUCT" \
    "{\"kind\":\"jira\",\"licence_tier\":$USERS,\"shared_slots\":$USERS}")
[[ "$code" == 201 || "$code" == 200 ]] || { cat "$WORK/reply" >&2; die "creating product $PRODUCT answered $code"; }

# One curl for every member: one connection, one line with the status of each call.
{
    for (( u = 0; u < USERS; u++ )); do
        echo "url = \"$BASE/admin/v1/products/$PRODUCT/members/u$u\""
        echo "output = \"/dev/null\""
    done
} >"$WORK/enrol.curl"
codes=$(curl -s -X PUT -H "Authorization: Bearer $TOKEN" -w '%{http_code}\n' -K "$WORK/enrol.curl") || true
enrolled=$(grep -c '^204$' <<<"$codes" || true)
(( enrolled == USERS )) || die "enrolled $enrolled of $USERS users (answers: $(sort <<<"$codes" | uniq -c | tr -s ' \n' ' '))"

metrics_snapshot() { # events, flush seconds sum and count, appends flushed, no-op POSTs,
    # flushes within 2.5 ms and within 10 ms
    curl -s "$BASE/metrics" | awk -v noop="slotpool_requests_total{outcome=\"unchanged\",product=\"$PRODUCT\"}" \
        -v noop2="slotpool_requests_total{product=\"$PRODUCT\",outcome=\"unchanged\"}" '
        $1 == "slotpool_journal_events_total" { e = $2 }
        $1 == "slotpool_journal_flush_seconds_sum" { fs = $2 }
        $1 == "slotpool_journal_flush_seconds_count" { fc = $2 }
        $1 == "slotpool_journal_flush_batch_size_sum" { bs = $2 }
        $1 == noop || $1 == noop2 { u = $2 }
        $1 == "slotpool_journal_flush_seconds_bucket{le=\"0.0025\"}" { f25 = $2 }
        $1 == "slotpool_journal_flush_seconds_bucket{le=\"0.01\"}" { f10 = $2 }
        END { printf "%s %s %s %s %s %s %s\n", e + 0, fs + 0, fc + 0, bs + 0, u + 0, f25 + 0, f10 + 0 }'
}
read -r EV0 FS0 FC0 BS0 NOOP0 F25_0 F10_0 < <(metrics_snapshot)
# The server's CPU time (user + system, in clock ticks): CPU per request depends far less
# on what else the machine runs than requests per second do.
server_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0; }
TICKS0=$(server_ticks)
# Sectors the data directory's block device wrote (field 7 of its stat): what reached the
# disk, WAL, sled and file-system metadata together (the process's write_bytes counter
# also counts pages dirtied again and misleads). Anything else writing to the same device
# during the run counts too: run it on a quiet machine.
DISK_STAT="/sys/dev/block/$(( $(stat -c '%d' "$DATA") >> 8 )):$(( $(stat -c '%d' "$DATA") & 255 ))/stat"
disk_sectors() { awk '{ print $7 }' "$DISK_STAT" 2>/dev/null || echo 0; }
SECTORS0=$(disk_sectors)

# --- load ----------------------------------------------------------------------------
echo "load: $CLIENTS clients ($THREADS generator threads, $USERS users), ${DURATION}s, rate=$RATE, durability=$DURABILITY, $BASE" >&2
set +e
"$LOADGEN" --url "$BASE" --product "$PRODUCT" --connections "$CLIENTS" \
    --users-per-connection "$SPARE" --duration "$DURATION" --rate "$RATE" --threads "$THREADS" \
    ${LATENCY_LOG:+--latency-log "$LATENCY_LOG"} >"$WORK/loadgen.out" 2>&1
GEN_RC=$?
set -e
RESULT=$(grep '^LOADRESULT ' "$WORK/loadgen.out" || true)
if (( GEN_RC != 0 )) || [[ -z "$RESULT" ]]; then
    cat "$WORK/loadgen.out" >&2
    die "the load generator failed (exit $GEN_RC)"
fi
TICKS1=$(server_ticks)
SECTORS1=$(disk_sectors)
read -r EV1 FS1 FC1 BS1 NOOP1 F25_1 F10_1 < <(metrics_snapshot)

declare -A R
for kv in ${RESULT#LOADRESULT }; do R[${kv%%=*}]=${kv#*=}; done

# Server-side state at the end: a quick sanity check that the pool is not wedged.
HELD=$(curl -s "$BASE/metrics" | awk -v p="$PRODUCT" '$1 == "slotpool_slots_held{product=\"" p "\"}" { print $2 }')

stop_server && STOP_OK=1 || STOP_OK=0

# --- report --------------------------------------------------------------------------
awk -v req="${R[requests]}" -v dur="${R[duration_us]}" -v ev0="$EV0" -v ev1="$EV1" \
    -v fs0="$FS0" -v fs1="$FS1" -v fc0="$FC0" -v fc1="$FC1" -v bs0="$BS0" -v bs1="$BS1" \
    -v slow25="$(( (${FC1%.*} - ${FC0%.*}) - (${F25_1%.*} - ${F25_0%.*}) ))" -v slow10="$(( (${FC1%.*} - ${FC0%.*}) - (${F10_1%.*} - ${F10_0%.*}) ))" \
    -v p90="${R[p90_us]}" -v p999="${R[p999_us]}" -v max="${R[max_us]}" -v late="${R[late]}" -v held="${HELD:-?}" \
    -v ticks="$(( TICKS1 - TICKS0 ))" -v sectors="$(( SECTORS1 - SECTORS0 ))" -v hz="$(getconf CLK_TCK)" -v gen="${R[cpu_us]:-0}" -v stalls="${R[stalls]:-0}" -v stalled="${R[stalled_us]:-0}" -v noop="$(( ${NOOP1%.*} - ${NOOP0%.*} ))" '
    BEGIN {
        ev = ev1 - ev0; fc = fc1 - fc0
        printf "load: journal events during the run: %d for %d requests (%.3f per request); %d POSTs by a holder (no-ops); %d slots held at the end\n",
            ev, req, (req > 0 ? ev / req : 0), noop, held
        if (fc > 0)
            printf "load: %d group flushes, %.1f appends and %.3f ms each on average; %d took over 2.5 ms, %d over 10 ms (write and fdatasync: the disk)\n",
                fc, (bs1 - bs0) / fc, (fs1 - fs0) / fc * 1000, slow25, slow10
        printf "load: latency p90=%.2f ms p99.9=%.2f ms max=%.2f ms over %.2f s; %d requests held up by an earlier answer (counted from when they were due)\n",
            p90 / 1000, p999 / 1000, max / 1000, dur / 1e6, late
        printf "load: the machine itself stalled %d times for more than 2 ms, %.1f ms in all (%.2f%% of the run; a thread that only sleeps saw it)\n",
            stalls, stalled / 1000, (dur > 0 ? stalled / dur * 100 : 0)
        if (ev > 0 && sectors > 0)
            printf "load: bytes to the disk: %.0f per event (%d sectors written by the device over the run)\n",
                sectors * 512 / ev, sectors
        if (req > 0 && ticks > 0)
            printf "load: server CPU %.1f us per request, load generator %.1f us (user + system)\n",
                ticks / hz * 1e6 / req, gen / req
    }' >&2
ERRS=$(( R[connect] + R[read] + R[write] + R[timeout] ))
echo "load: non-2xx responses: ${R[non2xx]}; socket errors: connect ${R[connect]}, read ${R[read]}, write ${R[write]}, timeout ${R[timeout]}" >&2

rc=0
if (( R[non2xx] > 0 || ERRS > 0 )); then
    echo "load: FAILED: some requests did not succeed (see $([[ "${KEEP_DATA:-}" == 1 ]] && echo "$LOG" || echo 'the server log: rerun with KEEP_DATA=1'))" >&2
    rc=1
fi
if (( STOP_OK != 1 )); then
    echo "load: FAILED: the server did not exit 0 on SIGTERM" >&2
    tail -n 20 "$LOG" >&2
    rc=1
fi
ev=$(( ${EV1%.*} - ${EV0%.*} ))
if (( R[requests] > 0 && ev * 10 < R[requests] * 9 )); then
    echo "load: WARNING: fewer journal events than requests: not every request changed state" >&2
fi

awk -v req="${R[requests]}" -v dur="${R[duration_us]}" -v p50="${R[p50_us]}" -v p99="${R[p99_us]}" -v c="$CLIENTS" \
    'BEGIN { printf "load: %.0f/s p50=%.2f p99=%.2f clients=%d\n", req / (dur / 1e6), p50 / 1000, p99 / 1000, c }'
exit "$rc"
