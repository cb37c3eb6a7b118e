#!/bin/sh
# bench/imap.sh: IMAP logins/s and memory per idle session through pipegate,
# against the same Dovecot directly, Dovecot's own proxy mode and nginx's
# mail proxy, all in one run on loopback (see bench/imapbench/main.go).
#
# Needs root and: apt-get install -y dovecot-imapd nginx-light libnginx-mod-mail
#
#   bench/imap.sh [--logins 50] [--rounds 10] [--sessions 400]
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/pipegate" ./cmd/pipegate
go build -o "$bin/imapbench" ./bench/imapbench
"$bin/imapbench" --pipegate "$bin/pipegate" "$@"
