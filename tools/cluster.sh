#!/usr/bin/env bash
# `make cluster`: a slotpool cluster of three nodes on this machine, with nginx in front.
#
#   tools/cluster.sh [run]      generate what is missing, start the nodes and nginx, stay in
#                               the foreground; Ctrl-C (or SIGTERM) stops them all
#   tools/cluster.sh start      the same, but return once the cluster serves (it keeps running)
#   tools/cluster.sh stop       stop the nodes (SIGTERM: they drain and flush) and nginx
#   tools/cluster.sh status     each node: process, /readyz, role, leader, term, indexes
#   tools/cluster.sh node N start|stop|kill   one node (kill = SIGKILL: try a failover)
#   tools/cluster.sh config     only generate the folders, configs, secret and tokens
#   tools/cluster.sh check      `nginx -t` of deploy/nginx/cluster.conf as this script runs it
#
# Layout (CLUSTER_DIR, default ./data-cluster):
#   cluster_secret, admin_token, scim_token   random, mode 0600, the same for every node
#   n1/ n2/ n3/          each node's data_dir, with its generated slotpool.toml, node.log, pid
#   nginx/               nginx.conf (includes deploy/nginx/cluster.conf), logs, pid,
#                        slotpool.htpasswd (user demo, password demo, for the gated product)
# The secret and the tokens are made once and kept; the configs are written when missing
# (delete one to have it written again). Addresses by default: node i listens for HTTP on
# 127.0.0.1:808i and for Raft on 127.0.0.1:910i; nginx on 127.0.0.1:8080 (slotpool's API
# for the cluster) and 127.0.0.1:8088 (a product at 127.0.0.1:8000 behind the gate).
#
# Settings (environment):
#   CLUSTER_DIR=./data-cluster  NODES=3  HTTP_BASE=8080 (node i: HTTP_BASE+i)
#   RAFT_BASE=9100 (node i: RAFT_BASE+i)  PROXY_LISTEN=127.0.0.1:8080  GATE_LISTEN=127.0.0.1:8088
#   NGINX=1 (0: no nginx)  DURABILITY=fsync|process  ELECTION_TIMEOUT_MS=500
#   SLOTPOOL_BIN=target/release/slotpool (`make cluster` builds it first)  SLOTPOOL_LOG=info
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/data-cluster}
# One spelling of the folder whatever the caller wrote (./data-cluster, a trailing /): a
# node is known by its config's path in its command line, and `stop` after a `start`
# spelled differently would not find the nodes it started.
CLUSTER_DIR=$(realpath -m -- "$CLUSTER_DIR")
NODES=${NODES:-3}
HTTP_BASE=${HTTP_BASE:-8080}
RAFT_BASE=${RAFT_BASE:-9100}
PROXY_LISTEN=${PROXY_LISTEN:-127.0.0.1:8080}
GATE_LISTEN=${GATE_LISTEN:-127.0.0.1:8088}
NGINX=${NGINX:-1}
DURABILITY=${DURABILITY:-fsync}
ELECTION_TIMEOUT_MS=${ELECTION_TIMEOUT_MS:-300}
BIN=${SLOTPOOL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/slotpool}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
NGINX_CONF_SRC="$ROOT/deploy/nginx/cluster.conf"
NGINX_DIR="$CLUSTER_DIR/nginx"

die() { echo "cluster: $*" >&2; exit 1; }
say() { echo "cluster: $*" >&2; }

[[ "$NODES" =~ ^[1-9]$ ]] || die "NODES must be 1 to 9, not '$NODES'"
[[ "$HTTP_BASE" =~ ^[0-9]+$ && "$RAFT_BASE" =~ ^[0-9]+$ ]] || die "HTTP_BASE and RAFT_BASE must be port numbers"
case "$DURABILITY" in fsync|process) ;; *) die "DURABILITY must be fsync or process, not '$DURABILITY'" ;; esac
[[ "$ELECTION_TIMEOUT_MS" =~ ^[1-9][0-9]*$ ]] || die "ELECTION_TIMEOUT_MS must be a positive integer"

http_addr() { echo "127.0.0.1:$(( HTTP_BASE + $1 ))"; }
raft_addr() { echo "127.0.0.1:$(( RAFT_BASE + $1 ))"; }
node_dir() { echo "$CLUSTER_DIR/n$1"; }
pid_of() { # the pid in a pid file, if that process is alive and is what the file says
    local file=$1 what=$2 pid
    [[ -f "$file" ]] || return 1
    pid=$(cat "$file" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$what" || return 1
    echo "$pid"
}
node_pid() { pid_of "$(node_dir "$1")/pid" "$(node_dir "$1")/slotpool.toml"; }
nginx_pid() { pid_of "$NGINX_DIR/pid" "$NGINX_DIR/nginx.conf"; }

random_file() { # 32 random bytes as 64 hex characters, mode 0600, kept if present
    local file=$1
    [[ -s "$file" ]] && return 0
    (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$file")
}

# --- configuration -------------------------------------------------------------------
generate() {
    (umask 077; mkdir -p "$CLUSTER_DIR")
    chmod 0700 "$CLUSTER_DIR"
    random_file "$CLUSTER_DIR/cluster_secret"
    random_file "$CLUSTER_DIR/admin_token"
    random_file "$CLUSTER_DIR/scim_token"
    local i j dir
    for (( i = 1; i <= NODES; i++ )); do
        dir=$(node_dir "$i")
        (umask 077; mkdir -p "$dir")
        [[ -f "$dir/slotpool.toml" ]] && continue
        {
            echo "# Node $i of a local slotpool cluster, written by tools/cluster.sh."
            echo "listen = \"$(http_addr "$i")\""
            echo "data_dir = \"$dir\""
            echo "durability = \"$DURABILITY\""
            echo "admin_token_file = \"$CLUSTER_DIR/admin_token\""
            echo "scim_token_file = \"$CLUSTER_DIR/scim_token\""
            echo 'trusted_proxies = ["127.0.0.0/8", "::1/128"]'
            echo
            echo "[cluster]"
            echo "node_id = $i"
            echo "raft_listen = \"$(raft_addr "$i")\""
            echo "secret_file = \"$CLUSTER_DIR/cluster_secret\""
            echo "cluster_id = \"slotpool\""
            echo "election_timeout_ms = $ELECTION_TIMEOUT_MS"
            for (( j = 1; j <= NODES; j++ )); do
                echo
                echo "[[cluster.peers]]"
                echo "id = $j"
                echo "http = \"$(http_addr "$j")\""
                echo "raft = \"$(raft_addr "$j")\""
            done
        } >"$dir/slotpool.toml.tmp"
        chmod 0600 "$dir/slotpool.toml.tmp"
        mv "$dir/slotpool.toml.tmp" "$dir/slotpool.toml"
    done
    if [[ "$NGINX" == 1 ]]; then
        nginx_config
    fi
}

# nginx.conf for a process of our own (no root, everything under $NGINX_DIR), around
# deploy/nginx/cluster.conf, with the node list and listen addresses of this run.
nginx_config() {
    mkdir -p "$NGINX_DIR"
    [[ -f "$NGINX_DIR/slotpool.htpasswd" ]] || (umask 077; echo 'demo:{PLAIN}demo' >"$NGINX_DIR/slotpool.htpasswd")
    local upstream=() backups=() i
    for (( i = 1; i <= NODES; i++ )); do
        upstream+=("    server $(http_addr "$i") max_fails=3 fail_timeout=5s;")
        backups+=("    server $(http_addr "$i") max_fails=0 backup;")
    done
    awk -v primaries="$(printf '%s\n' "${upstream[@]}")" -v backups="$(printf '%s\n' "${backups[@]}")" \
        -v proxy="$PROXY_LISTEN" -v gate="$GATE_LISTEN" '
        /^upstream slotpool_cluster \{/ { inside = 1; print; print primaries; print backups; next }
        inside && /^[ \t]*server / { next }
        inside && /^\}/ { inside = 0 }
        /^[ \t]*listen 127\.0\.0\.1:8080;/ { sub(/127\.0\.0\.1:8080/, proxy) }
        /^[ \t]*listen 127\.0\.0\.1:8088;/ { sub(/127\.0\.0\.1:8088/, gate) }
        { print }' "$NGINX_CONF_SRC" >"$NGINX_DIR/cluster.conf"
    # Started by root, nginx's workers would become `nobody`, who may not enter the 0700
    # cluster folder (the password file, temporary files): they stay who started them.
    local user_line=""
    [[ "$(id -u)" != 0 ]] || user_line="user root;"
    cat >"$NGINX_DIR/nginx.conf" <<EOF
# Written by tools/cluster.sh: nginx as the user who runs it, everything under this folder.
$user_line
worker_processes 1;
pid $NGINX_DIR/pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http {
    access_log $NGINX_DIR/access.log;
    client_body_temp_path $NGINX_DIR/tmp_body;
    proxy_temp_path $NGINX_DIR/tmp_proxy;
    fastcgi_temp_path $NGINX_DIR/tmp_fastcgi;
    uwsgi_temp_path $NGINX_DIR/tmp_uwsgi;
    scgi_temp_path $NGINX_DIR/tmp_scgi;
    # deploy/nginx/cluster.conf with this run's nodes and listen addresses.
    include $NGINX_DIR/cluster.conf;
}
EOF
}

nginx_check() {
    [[ -x "$NGINX_BIN" ]] || die "nginx is not installed (apt-get install nginx)"
    "$NGINX_BIN" -t -q -e "$NGINX_DIR/error.log" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf"
}

# --- processes -----------------------------------------------------------------------
ready() { [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$1/readyz" || true)" == 200 ]]; }

start_node() {
    local i=$1 dir pid
    dir=$(node_dir "$i")
    [[ -f "$dir/slotpool.toml" ]] || die "no $dir/slotpool.toml (run: tools/cluster.sh config)"
    if pid=$(node_pid "$i"); then say "node $i already runs (pid $pid)"; return 0; fi
    [[ -x "$BIN" ]] || die "no slotpool binary at $BIN (cargo build --release, or set SLOTPOOL_BIN)"
    # Its own session: Ctrl-C in the terminal reaches this script only, which stops the
    # nodes in order (SIGTERM: drain, flush).
    # SLOTPOOL_* variables beat the config file: one from the caller's environment would
    # give every node the same address or data dir.
    env -u SLOTPOOL_CONFIG -u SLOTPOOL_LISTEN -u SLOTPOOL_DATA_DIR -u SLOTPOOL_DURABILITY \
        SLOTPOOL_LOG="${SLOTPOOL_LOG:-info}" setsid "$BIN" serve --config "$dir/slotpool.toml" \
        >>"$dir/node.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    say "node $i: pid $!, http $(http_addr "$i"), raft $(raft_addr "$i"), log $dir/node.log"
}

start_nginx() {
    [[ "$NGINX" == 1 ]] || return 0
    local pid code
    if pid=$(nginx_pid); then say "nginx already runs (pid $pid)"; return 0; fi
    nginx_check || die "nginx refused $NGINX_DIR/nginx.conf (see above)"
    setsid "$NGINX_BIN" -e "$NGINX_DIR/error.log" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" \
        -g 'daemon off;' >>"$NGINX_DIR/nginx.out" 2>&1 </dev/null &
    # nginx writes its own pid file (the same pid: it does not fork without daemon).
    pid=$!
    for _ in $(seq 50); do
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://$PROXY_LISTEN/healthz" || true)
        [[ "$code" == 000 ]] || break
        kill -0 "$pid" 2>/dev/null || die "nginx exited: $(tail -n 5 "$NGINX_DIR/error.log" "$NGINX_DIR/nginx.out" 2>/dev/null)"
        sleep 0.1
    done
    say "nginx: pid $pid, $PROXY_LISTEN (slotpool) and $GATE_LISTEN (gated product)"
}

# Stops a process: SIGTERM, up to 20 s, then SIGKILL.
stop_pid() {
    local pid=$1 what=$2
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    say "$what (pid $pid) did not stop within 20 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

stop_node() {
    local i=$1 pid
    if pid=$(node_pid "$i"); then
        stop_pid "$pid" "node $i"
        say "node $i stopped"
    fi
    rm -f "$(node_dir "$i")/pid"
}

stop_all() {
    local i pid
    if pid=$(nginx_pid); then stop_pid "$pid" nginx; say "nginx stopped"; fi
    # Followers first, the leader last: one election less on the way down.
    for (( i = NODES; i >= 1; i-- )); do stop_node "$i"; done
}

wait_serving() { # every node ready (it leads or knows a leader), within 60 s
    local i deadline=$(( SECONDS + 60 )) missing
    while :; do
        missing=()
        for (( i = 1; i <= NODES; i++ )); do
            ready "$(http_addr "$i")" || missing+=("$i")
            if ! node_pid "$i" >/dev/null; then
                tail -n 20 "$(node_dir "$i")/node.log" >&2 || true
                die "node $i exited (its log is above: $(node_dir "$i")/node.log)"
            fi
        done
        (( ${#missing[@]} == 0 )) && return 0
        (( SECONDS < deadline )) || die "nodes ${missing[*]} not ready within 60 s (logs: $CLUSTER_DIR/n*/node.log)"
        sleep 0.2
    done
}

# One node's view of the cluster, as a short line (GET /admin/v1/cluster).
cluster_line() {
    local body
    body=$(curl -s -m 2 -H "Authorization: Bearer $(cat "$CLUSTER_DIR/admin_token")" \
        "http://$1/admin/v1/cluster" 2>/dev/null) || { echo "-"; return; }
    python3 - "$body" <<'EOF' 2>/dev/null || echo "-"
import json, sys
s = json.loads(sys.argv[1])
lag = " ".join(f"{m.get('id')}:{m.get('lag') if m.get('lag') is not None else '-'}" for m in s.get("members", []))
print(f"{s.get('state')} leader={s.get('leader')} term={s.get('term')} "
      f"commit={s.get('commit_index')} applied={s.get('applied_index')} lag[{lag}]")
EOF
}

status() {
    local i pid code line
    [[ -d "$CLUSTER_DIR" ]] || die "no cluster at $CLUSTER_DIR (tools/cluster.sh start)"
    printf '%-6s %-8s %-21s %-6s %s\n' node pid http readyz cluster
    for (( i = 1; i <= NODES; i++ )); do
        pid=$(node_pid "$i" || echo -)
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$(http_addr "$i")/readyz" || true)
        line=-
        if [[ "$pid" != - ]]; then line=$(cluster_line "$(http_addr "$i")"); fi
        printf '%-6s %-8s %-21s %-6s %s\n' "n$i" "$pid" "$(http_addr "$i")" "${code:-000}" "$line"
    done
    if [[ "$NGINX" == 1 ]]; then
        pid=$(nginx_pid || echo -)
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$PROXY_LISTEN/healthz" || true)
        printf '%-6s %-8s %-21s %-6s %s\n' nginx "$pid" "$PROXY_LISTEN" "${code:-000}" "(/healthz of some node)"
    fi
}

summary() {
    say "serving. Admin token: $CLUSTER_DIR/admin_token (the same on every node)"
    if [[ "$NGINX" == 1 ]]; then
        say "  slotpool through nginx: http://$PROXY_LISTEN  (e.g. curl -H \"Authorization: Bearer \$(cat $CLUSTER_DIR/admin_token)\" http://$PROXY_LISTEN/admin/v1/cluster)"
    fi
    local i
    for (( i = 1; i <= NODES; i++ )); do say "  node $i: http://$(http_addr "$i")"; done
}

start_all() {
    command -v curl >/dev/null 2>&1 || die "curl is not installed (apt-get install curl)"
    [[ "$NGINX" != 1 || -x "$NGINX_BIN" ]] || die "nginx is not installed (apt-get install nginx), or run with NGINX=0"
    generate
    local i
    for (( i = 1; i <= NODES; i++ )); do start_node "$i"; done
    wait_serving
    start_nginx
    summary
}

run() {
    trap 'say "stopping"; stop_all; exit 0' INT TERM
    start_all
    say "Ctrl-C stops every node and nginx"
    while :; do
        sleep 1 &
        wait $! || true
    done
}

cmd=${1:-run}
case "$cmd" in
    run) run ;;
    start) start_all ;;
    stop) stop_all ;;
    status) status ;;
    config) generate; say "written under $CLUSTER_DIR" ;;
    check) NGINX=1; generate; nginx_check && say "nginx accepts $NGINX_DIR/nginx.conf (from deploy/nginx/cluster.conf)" ;;
    node)
        n=${2:-}; action=${3:-}
        if ! [[ "$n" =~ ^[1-9]$ ]] || (( n > NODES )); then die "node: a node number 1..$NODES, not '$n'"; fi
        case "$action" in
            start) generate; start_node "$n" ;;
            stop) stop_node "$n" ;;
            kill)
                pid=$(node_pid "$n") || die "node $n does not run"
                kill -KILL "$pid"; rm -f "$(node_dir "$n")/pid"; say "node $n killed (SIGKILL)" ;;
            *) die "node N start|stop|kill" ;;
        esac ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (run, start, stop, status, node N start|stop|kill, config, check)" ;;
esac
