#!/usr/bin/env bash
# bench/upgrade.sh: a binary upgrade (SIGUSR2) of `pipegate mail` that
# carries N idle IMAP sessions (implicit TLS from the clients, on the
# event loops; plain IMAP to bench/imapidle's in-memory backend) from the
# old process to the new one. Per round: the hand-over time (SIGUSR2 to
# "sessions taken over") and sessions/s, the longest NOOP round trip of
# SAMPLERS sessions through the upgrade against the same sampling just
# before it, the new process's RSS per handed-over session against a fresh
# process's per session opened there, and one NOOP on every session after
# (none closed, none reconnected). See bench/upgradebench/main.go.
#
#   bench/upgrade.sh                     # N=9000, ROUNDS=1
#   N=2000 ROUNDS=3 bench/upgrade.sh     # medians over 3 rounds
#
# Environment: N (9000), ROUNDS (1), SAMPLERS (200), INTERVAL (20ms between
# a sampler's NOOPs), QUIET (3s baseline), TAIL (1s), SETTLE (3s before
# reading memory), CONCURRENCY (200), PG_GOMAXPROCS ("default" leaves it
# unset), BASE_PORT (17420: backend, +1 pipegate), KEEP=1 keeps the folder
# with config and logs (kept anyway when the run fails), PIPEGATE=/path/to/
# pipegate uses that binary instead of building one (e.g. built from
# `git archive HEAD` while the tree is mid-edit).
# Every process stays under 20,000 open files at N=9000 (pipegate holds
# 2 per session, the clients and the backend 1).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-9000}
ROUNDS=${ROUNDS:-1}
SAMPLERS=${SAMPLERS:-200}
INTERVAL=${INTERVAL:-20ms}
QUIET=${QUIET:-3s}
TAIL=${TAIL:-1s}
SETTLE=${SETTLE:-3s}
CONCURRENCY=${CONCURRENCY:-200}
PG_GOMAXPROCS=${PG_GOMAXPROCS:-default}
BASE=${BASE_PORT:-17420}
for port in "$BASE" $((BASE + 1)); do
  if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "upgrade.sh: port $port is in use (a previous run?): set BASE_PORT" >&2
    exit 1
  fi
done
backend=127.0.0.1:$BASE pgaddr=127.0.0.1:$((BASE + 1))
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((2 * N + 200)) ]; then
  echo "upgrade.sh: open files limit $(ulimit -n) is below 2*N+200 ($((2 * N + 200))): lower N" >&2
  exit 1
fi

tmp=$(mktemp -d /tmp/upgradebench.XXXXXX)
bpid=
ok=0
cleanup() {
  if [ -n "$bpid" ]; then kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; fi
  if [ "$ok" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$tmp"
  else
    echo "upgrade.sh: config and logs kept in $tmp" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "upgrade.sh: config and logs in $tmp" >&2

pipegate=${PIPEGATE:-}
if [ -z "$pipegate" ]; then
  go build -o "$tmp/pipegate" ./cmd/pipegate
  pipegate=$tmp/pipegate
fi
go build -o "$tmp/imapidle" ./bench/imapidle
go build -o "$tmp/upgradebench" ./bench/upgradebench
"$tmp/imapidle" cert -dir "$tmp"
mkdir -m 0700 "$tmp/run"

"$tmp/imapidle" backend -listen "$backend" -users "$N" 2>"$tmp/backend.log" &
bpid=$!
for _ in $(seq 300); do
  (echo >/dev/tcp/127.0.0.1/"$BASE") 2>/dev/null && break
  kill -0 "$bpid" 2>/dev/null || { echo "upgrade.sh: the backend exited (see $tmp/backend.log)" >&2; exit 1; }
  sleep 0.1
done

cat >"$tmp/routes.yaml" <<YAML
default: imap://$backend
YAML
cat >"$tmp/mail.yaml" <<YAML
listen:
  - addr: $pgaddr
    protocol: imap
    tls: true
tls:
  cert: $tmp/server.crt
  key: $tmp/server.key
routes_file: $tmp/routes.yaml
# Every client comes from 127.0.0.1, CONCURRENCY at once: the NAT case.
max_prelogin_connections_per_ip: 0
drain_timeout: 2s
log:
  format: json
  level: info
YAML

# The new process inherits the environment, GOMAXPROCS included.
if [ "$PG_GOMAXPROCS" != default ]; then export GOMAXPROCS=$PG_GOMAXPROCS; fi
echo "# $(uname -r), $(nproc) cpus shared with other work (load before: $(cut -d' ' -f1-3 /proc/loadavg)); pipegate GOMAXPROCS=$PG_GOMAXPROCS"
"$tmp/upgradebench" -pipegate "$pipegate" -config "$tmp/mail.yaml" -dir "$tmp" -addr "$pgaddr" \
  -n "$N" -users "$N" -rounds "$ROUNDS" -samplers "$SAMPLERS" -interval "$INTERVAL" -quiet "$QUIET" \
  -tail "$TAIL" -settle "$SETTLE" -concurrency "$CONCURRENCY"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
for f in "$tmp"/pipegate-*.log; do
  if grep -q '"level":"\(WARN\|ERROR\)"' "$f"; then
    echo "upgrade.sh: $(basename "$f") has warnings or errors:" >&2
    grep '"level":"\(WARN\|ERROR\)"' "$f" | sed 's/"time":"[^"]*",//' | sort | uniq -c | sort -rn | head -5 >&2
  fi
done
ok=1
