#!/bin/sh
# bench/affinity.sh: what user affinity costs. IMAP logins/s through
# pipegate to Dovecot with the route's backend pool:shared (assignment in
# Redis) against a direct backend, same process and run, interleaved
# rounds; and Redis memory per assignment, extrapolated to 1M users (see
# bench/affinitybench/main.go).
#
# Needs root and: apt-get install -y dovecot-imapd redis-server
#
#   bench/affinity.sh [--logins 200] [--rounds 10] [--users 100000]
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/pipegate" ./cmd/pipegate
go build -o "$bin/affinitybench" ./bench/affinitybench
"$bin/affinitybench" --pipegate "$bin/pipegate" "$@"
