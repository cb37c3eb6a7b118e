#!/bin/sh
# Shows which system calls pipegate's pipe core uses to move bulk bytes:
# TCP→TCP and TCP→Unix pairs must go through splice(2), with no read/write
# of the payload in user space. Needs the Debian package strace.
#
#   bench/pipe-strace.sh [bytes]     (default 256 MiB each way)
set -eu
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "pipe-strace.sh: strace not installed (apt-get install -y strace)" >&2; exit 1; }
bytes=${1:-268435456}
tmp=$(mktemp -d)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
go build -o "$tmp/pipebench" ./bench/pipebench

# Four consecutive free loopback ports.
for _ in $(seq 50); do
	base=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000)) # below the ephemeral range
	[ -z "$(ss -Htan "( sport >= :$base and sport <= :$((base + 3)) )")" ] && break
done
tcpsrv=127.0.0.1:$base
unixsrv=unix:$tmp/server.sock

start() { # name, args...: start a pipebench role and wait for "ready"
	name=$1; shift
	"$@" >"$tmp/$name.out" 2>&1 &
	pids="$pids $!"
	for _ in $(seq 100); do grep -q ready "$tmp/$name.out" 2>/dev/null && return; sleep 0.1; done
	echo "pipe-strace.sh: $name did not start" >&2; cat "$tmp/$name.out" >&2; exit 1
}
start tcpsrv "$tmp/pipebench" server -listen "$tcpsrv"
start unixsrv "$tmp/pipebench" server -listen "$unixsrv"

for up in tcp unix; do
	if [ $up = tcp ]; then upstream=$tcpsrv; else upstream=$unixsrv; fi
	fwd=127.0.0.1:$((base + 1))
	[ $up = unix ] && fwd=127.0.0.1:$((base + 2))
	strace -f -c -o "$tmp/strace.$up" -e trace=splice,read,write,recvfrom,sendto,readv,writev,recvmsg,sendmsg,ppoll \
		"$tmp/pipebench" forward -mode pipe -listen "$fwd" -upstream "$upstream" >"$tmp/fwd.$up.out" 2>&1 &
	st=$!
	for _ in $(seq 100); do grep -q ready "$tmp/fwd.$up.out" 2>/dev/null && break; sleep 0.1; done
	"$tmp/pipebench" client -addr "$fwd" -up "$bytes"
	"$tmp/pipebench" client -addr "$fwd" -down "$bytes"
	kill "$(cat /proc/$st/task/$st/children | cut -d' ' -f1)"
	wait "$st" || true
	echo "== TCP→$up pair, $bytes bytes each way through the pipe: syscalls of the forwarder"
	cat "$tmp/strace.$up"
done
