#!/bin/sh
# bench/mail.sh: POP3 and submission logins/s through `pipegate mail`,
# against the same Dovecot directly and Dovecot's own proxy mode, plain and
# with client TLS (995, 465, 587 STARTTLS), in one run on loopback with a
# rotating order; then pipegate's RSS per idle logged-in session for IMAP,
# POP3, ManageSieve and submission, plain and TLS, each protocol compared
# with IMAP's figure. See bench/mailbench/main.go.
#
# Needs root and: apt-get install -y dovecot-imapd dovecot-pop3d
#   dovecot-submissiond dovecot-managesieved
#
#   bench/mail.sh [--logins 50] [--rounds 10] [--sessions 400] [--mem-rounds 3]
#
# PIPEGATE=/path/to/pipegate uses that binary instead of building one
# (e.g. built from `git archive HEAD` while the tree is mid-edit).
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
pipegate=${PIPEGATE:-}
if [ -z "$pipegate" ]; then
	go build -o "$bin/pipegate" ./cmd/pipegate
	pipegate=$bin/pipegate
fi
go build -o "$bin/mailbench" ./bench/mailbench
"$bin/mailbench" --pipegate "$pipegate" "$@"
