#!/usr/bin/env bash
# Idle memory, bulk throughput and ping-pong latency of the evloop engine
# against direct, a naive Go forwarder (two io.Copy goroutines) and HAProxy
# (nbthread 1, mode tcp, splice-auto) and, when it builds, the pipe core's
# public API: its goroutine flavour (pipe.Go, "core") and pipe.Engine with
# FlavourAuto ("engine": the event loops behind Engine.Enter), all in one
# run on loopback.
# The load's clients and server (bench/evloop/load) run in a process of their
# own; each forwarder in its own process, so that RSS deltas are the
# forwarder's alone.
#
#   bench/evloop.sh                     # 9000 idle pairs, 256 MiB bulk, 5 rounds
#   IDLE=2000 BULK=128 ROUNDS=1 bench/evloop.sh   # quick
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-9000}
BULK=${BULK:-256}
ROUNDS=${ROUNDS:-5}
PINGS=${PINGS:-2000}
LOOPS=${LOOPS:-1}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
BASE=${BASE_PORT:-17100}
for port in $(seq "$BASE" $((BASE+5))); do
  if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "port $port is in use (a previous run?): set BASE_PORT" >&2; exit 1
  fi
done
srv=127.0.0.1:$BASE ev=127.0.0.1:$((BASE+1)) naive=127.0.0.1:$((BASE+2)) hap=127.0.0.1:$((BASE+3))

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/evfwd" ./pipe/internal/evloop/cmd/evfwd
go build -o "$tmp/load" ./bench/evloop/load

"$tmp/evfwd" -mode evloop -loops "$LOOPS" -listen "$ev" -to "$srv" >"$tmp/evloop.log" 2>&1 &
evpid=$!; pids+=("$evpid")
"$tmp/evfwd" -mode naive -listen "$naive" -to "$srv" >"$tmp/naive.log" 2>&1 &
naivepid=$!; pids+=("$naivepid")

targets=(-target "direct=$srv" -target "evloop=$ev,pid=$evpid" -target "naive=$naive,pid=$naivepid")
# The pipe core's goroutine flavour, when package pipe builds (it may be mid-rewrite).
core=127.0.0.1:$((BASE+4))
if go build -o "$tmp/corefwd" ./pipe/internal/evloop/cmd/corefwd 2>"$tmp/corefwd.build"; then
  "$tmp/corefwd" -engine go -listen "$core" -to "$srv" >"$tmp/core.log" 2>&1 &
  corepid=$!; pids+=("$corepid")
  targets+=(-target "core=$core,pid=$corepid")
  engine=127.0.0.1:$((BASE+5))
  "$tmp/corefwd" -engine auto -loops "$LOOPS" -listen "$engine" -to "$srv" >"$tmp/engine.log" 2>&1 &
  enginepid=$!; pids+=("$enginepid")
  targets+=(-target "engine=$engine,pid=$enginepid")
else
  echo "pipe core does not build: comparing without it ($(head -1 "$tmp/corefwd.build"))" >&2
fi
if [ -x "$HAPROXY" ]; then
  cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn $((IDLE + 500))
  # HAProxy wants 2 fds per conn plus 2 per splice pipe (maxpipes defaults to
  # maxconn/4): keep it under this machine's 20,000-file cap.
  maxpipes 200
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend fe
  bind $hap
  default_backend be
backend be
  server s1 $srv
CFG
  "$HAPROXY" -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
  hpid=$!; pids+=("$hpid")
  sleep 0.5
  kill -0 "$hpid" 2>/dev/null || { cat "$tmp/haproxy.log" >&2; exit 1; }
  targets+=(-target "haproxy=$hap,pid=$hpid")
else
  echo "haproxy not found at $HAPROXY: comparing without it" >&2
fi

# Wait for the forwarders to listen (bounded).
for addr in "$ev" "$naive" ${corepid:+"$core"} ${enginepid:+"$engine"} ${hpid:+"$hap"}; do
  port=${addr##*:}
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
  done
done

echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cpus; evloop loops=$LOOPS; $("$HAPROXY" -v 2>/dev/null | head -1 || true)"
"$tmp/load" -server "$srv" "${targets[@]}" -idle "$IDLE" -bulk "$BULK" -rounds "$ROUNDS" -pingpong "$PINGS"
