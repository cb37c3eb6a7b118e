#!/bin/sh
# bench/soak.sh: a soak / churn run of `pipegate mail` (IMAP, POP3,
# ManageSieve, submission; client TLS and STARTTLS) in front of a real
# Dovecot, and `pipegate forward` (plain on the event loops and on the Go
# path, TLS termination, TLS origination) in front of an echo server, all
# on loopback. It drives a mixed churn (good and failed logins, clients
# that vanish mid handshake, mid STARTTLS, mid login, mid literal, idle
# sessions dropped, over-long lines, short and long forward connections,
# half-closes), sends SIGHUP every --reload and restarts Dovecot once
# half-way; it samples each daemon's fds, threads, RSS (/proc) and
# goroutines (go_goroutines on its /metrics), and after the drain checks
# that they came back, that the metrics match what was done and that the
# logs hold one line per connection, no password, no panic and no ERROR.
# After the churn it also bursts limit+1 connections per address (a leaked
# limit slot shows), waits for two garbage collections (up to 4.5 min more
# than DURATION in all) and stops both daemons with SIGTERM while
# sessions are open. See bench/soakload/main.go. Exit status 1 when a
# check failed (the failures are listed under FINDINGS).
#
# Needs root and: apt-get install -y dovecot-imapd dovecot-pop3d
#   dovecot-submissiond dovecot-managesieved
#
#   bench/soak.sh                        # DURATION=3m
#   DURATION=10m bench/soak.sh           # the long run
#   DURATION=1m bench/soak.sh --sample 5s --reload 10s --mail-workers 8
#   SOAK_KEEP=1 bench/soak.sh            # keep configs and logs
#
# PIPEGATE=/path/to/pipegate uses that binary instead of building one.
set -eu
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
pipegate=${PIPEGATE:-}
if [ -z "$pipegate" ]; then
	go build -o "$bin/pipegate" ./cmd/pipegate
	pipegate=$bin/pipegate
fi
go build -o "$bin/soakload" ./bench/soakload
"$bin/soakload" --pipegate "$pipegate" --duration "${DURATION:-3m}" "$@"
