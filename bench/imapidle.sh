#!/usr/bin/env bash
# bench/imapidle.sh: memory per idle IMAP session with TLS on the client
# side, through `pipegate imap` and through HAProxy terminating TLS
# (mode tcp, nbthread 1), one after the other in one run, each a fresh
# process in front of the same plain-IMAP backend (go-imap's in-memory
# server). Clients log in, SELECT INBOX and IDLE, and stay; the table gives
# each proxy's RSS growth per session (from a few warm-up sessions to N,
# and from N/2 to N) and its open files per session. See
# bench/imapidle/main.go.
#
#   bench/imapidle.sh                  # N=9000 sessions per target
#   N=1000 bench/imapidle.sh           # quick run
#
# Environment: N (9000), TARGETS ("pipegate haproxy"), CONCURRENCY (200
# sessions being opened at once), SETTLE (3s before each measurement),
# WARMUP (50), IDLE (1: SELECT+IDLE after LOGIN; 0: stay after LOGIN),
# PG_GOMAXPROCS (1, as HAProxy's nbthread 1; "default" leaves it unset),
# HAPROXY (/usr/sbin/haproxy), BASE_PORT (17400: backend, +1 pipegate,
# +2 haproxy), KEEP=1 keeps the folder with configs and logs (it is kept
# anyway when the run fails).
# Needs: apt-get install -y haproxy. Every process stays under 20,000 open
# files at N=9000 (the proxy holds 2 per session).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-9000}
TARGETS=${TARGETS:-pipegate haproxy}
CONCURRENCY=${CONCURRENCY:-200}
SETTLE=${SETTLE:-3s}
WARMUP=${WARMUP:-50}
IDLE=${IDLE:-1}
PG_GOMAXPROCS=${PG_GOMAXPROCS:-1}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
BASE=${BASE_PORT:-17400}
for port in $(seq "$BASE" $((BASE + 2))); do
  if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "imapidle.sh: port $port is in use (a previous run?): set BASE_PORT" >&2
    exit 1
  fi
done
backend=127.0.0.1:$BASE pgaddr=127.0.0.1:$((BASE + 1)) hapaddr=127.0.0.1:$((BASE + 2))
ulimit -n 20000 2>/dev/null || true

tmp=$(mktemp -d /tmp/imapidle.XXXXXX)
pids=()
ok=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$ok" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$tmp"
  else
    echo "imapidle.sh: configs and logs kept in $tmp" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "imapidle.sh: configs and logs in $tmp" >&2

go build -o "$tmp/pipegate" ./cmd/pipegate
go build -o "$tmp/imapidle" ./bench/imapidle
"$tmp/imapidle" cert -dir "$tmp"

# wait_listening ADDR PID: bounded wait for ADDR to accept, while PID lives.
wait_listening() {
  local port=${1##*:}
  for _ in $(seq 150); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "imapidle.sh: pid $2 exited before listening on $1" >&2; return 1; }
    sleep 0.1
  done
  echo "imapidle.sh: nothing listens on $1" >&2
  return 1
}

# stop PID: SIGTERM, then wait (bounded), then SIGKILL.
stop() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# fds PID: open files of PID.
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

"$tmp/imapidle" backend -listen "$backend" -users "$N" 2>"$tmp/backend.log" &
bpid=$!
pids+=("$bpid")
wait_listening "$backend" "$bpid"
backend_fds=$(fds "$bpid")

start_pipegate() {
  cat >"$tmp/routes.yaml" <<YAML
default: imap://$backend
YAML
  cat >"$tmp/pipegate.yaml" <<YAML
listen:
  - addr: $pgaddr
    tls: true
tls:
  cert: $tmp/server.crt
  key: $tmp/server.key
routes_file: $tmp/routes.yaml
# Every client comes from 127.0.0.1, CONCURRENCY at once: the NAT case.
max_prelogin_connections_per_ip: 0
drain_timeout: 2s
log:
  level: warn
YAML
  if [ "$PG_GOMAXPROCS" = default ]; then
    "$tmp/pipegate" imap --config "$tmp/pipegate.yaml" 2>"$tmp/pipegate.log" &
  else
    GOMAXPROCS=$PG_GOMAXPROCS "$tmp/pipegate" imap --config "$tmp/pipegate.yaml" 2>"$tmp/pipegate.log" &
  fi
  ppid_=$!
  paddr=$pgaddr
}

start_haproxy() {
  cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn $((N + 200))
  # 2 fds per session; no splice here, few pipes: stay under the 20,000-file cap.
  maxpipes 50
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend imaps
  bind $hapaddr ssl crt $tmp/server.pem
  default_backend imap
backend imap
  server s1 $backend
CFG
  "$HAPROXY" -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
  ppid_=$!
  paddr=$hapaddr
}

describe() {
  case $1 in
  pipegate) echo "pipegate imap (GOMAXPROCS=$PG_GOMAXPROCS, $(go version | awk '{print $3}'))" ;;
  haproxy) echo "$("$HAPROXY" -v 2>/dev/null | head -1 | awk '{print "HAProxy", $3}') ($("$HAPROXY" -vv 2>/dev/null | grep -m1 'Running on OpenSSL' | sed 's/Running on //'), nbthread 1)" ;;
  esac
}

idle_flag=true
[ "$IDLE" = 1 ] || idle_flag=false
rows=()
for target in $TARGETS; do
  case $target in
  pipegate) start_pipegate ;;
  haproxy)
    if [ ! -x "$HAPROXY" ]; then
      echo "imapidle.sh: $HAPROXY not found (apt-get install -y haproxy): skipping haproxy" >&2
      continue
    fi
    start_haproxy
    ;;
  *) echo "imapidle.sh: unknown target $target (want pipegate or haproxy)" >&2; exit 2 ;;
  esac
  pids+=("$ppid_")
  wait_listening "$paddr" "$ppid_"
  echo "imapidle.sh: $target pid $ppid_ on $paddr: $(describe "$target")" >&2
  "$tmp/imapidle" clients -name "$target" -addr "$paddr" -pid "$ppid_" -n "$N" -users "$N" \
    -warmup "$WARMUP" -concurrency "$CONCURRENCY" -settle "$SETTLE" -idle="$idle_flag" \
    >"$tmp/$target.row" 2> >(tee "$tmp/$target.clients.log" >&2)
  rows+=("$(cat "$tmp/$target.row")")
  stop "$ppid_"
  # The proxy's exit closes its backend sockets: wait (bounded) for the
  # backend to let them go, so that it stays under the file cap.
  for _ in $(seq 100); do
    [ "$(fds "$bpid")" -le $((backend_fds + 10)) ] && break
    sleep 0.1
  done
  if [ -s "$tmp/$target.log" ] && grep -qiE 'level=(warn|error)|error|fail' "$tmp/$target.log"; then
    echo "imapidle.sh: $target logged warnings or errors ($tmp/$target.log):" >&2
    grep -iE 'level=(warn|error)|error|fail' "$tmp/$target.log" | sort | uniq -c | sort -rn | head -5 >&2
  fi
done

echo
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cpus; N=$N sessions, client TLS (Go crypto/tls defaults), plain IMAP to the backend, IDLE=$IDLE"
for target in $TARGETS; do
  if [ -s "$tmp/$target.row" ]; then echo "# $target: $(describe "$target")"; fi
done
echo "# RSS0 after $WARMUP warm-up sessions, RSSN after N; per session: RSS growth from $WARMUP to N and from N/2 to N, open files"
printf '%-9s %8s %9s %9s %14s %16s %9s %8s\n' target sessions 'RSS0 MiB' 'RSSN MiB' 'KiB/sess W..N' 'KiB/sess N/2..N' 'fds/sess' 'opens/s'
for r in "${rows[@]}"; do echo "$r"; done
ok=1
