#!/bin/sh
# Compares, in one run on loopback, direct connections with the same traffic
# through pipegate's pipe core, a naive Go forwarder and HAProxy (TCP mode,
# splice, one thread). Needs the Debian package haproxy.
#
#   bench/pipe.sh [pipebench run flags, e.g. -reps 5 -bulk 2147483648]
#
# Ratios are to direct, measured in the same run; only those mean something
# on a shared machine.
set -eu
cd "$(dirname "$0")/.."
command -v haproxy >/dev/null || { echo "pipe.sh: haproxy not installed (apt-get install -y haproxy)" >&2; exit 1; }
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
hapid=
cleanup() { [ -n "$hapid" ] && kill "$hapid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

go build -o "$tmp/pipebench" ./bench/pipebench

# Six consecutive free loopback ports.
for _ in $(seq 50); do
	base=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000)) # below the ephemeral range
	[ -z "$(ss -Htan "( sport >= :$base and sport <= :$((base + 5)) )")" ] && break
done
server=127.0.0.1:$base
pipe=127.0.0.1:$((base + 1))
naive=127.0.0.1:$((base + 2))
ha=127.0.0.1:$((base + 3))
pipetls=127.0.0.1:$((base + 4))
naivetls=127.0.0.1:$((base + 5))

cat >"$tmp/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 9000
    maxpipes 500
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    option splice-request
    option splice-response
frontend fe
    bind $ha
    default_backend be
backend be
    server s1 $server
CFG
haproxy -db -f "$tmp/haproxy.cfg" &
hapid=$!

echo "pipe.sh: $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(haproxy -v | head -1 | cut -d' ' -f1-3)"
"$tmp/pipebench" run -server "$server" -pipe "$pipe" -naive "$naive" -pipe-tls "$pipetls" -naive-tls "$naivetls" \
	-haproxy "$ha" -haproxy-pid "$hapid" "$@"
