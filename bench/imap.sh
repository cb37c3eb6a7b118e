#!/bin/sh
# bench/imap.sh: IMAP logins/s and memory per idle session through pipegate,
# against the same Dovecot directly, Dovecot's own proxy mode and nginx's
# mail proxy, all in one run on loopback (see bench/imapbench/main.go).
# Beside each rate table, the median time of each phase of a login cycle
# (connect, greeting with the TLS handshake, login, logout), per line.
# One run per certificate key in KEYS (default: rsa2048, then ecdsa-p256);
# every comparison is within a run.
#
# Needs root and: apt-get install -y dovecot-imapd nginx-light libnginx-mod-mail libssl-dev
# (libssl-dev: the line pipegate-openssl is pipegate built with -tags openssl,
# whose RSA certificate keys sign through libcrypto)
#
#   bench/imap.sh [--logins 50] [--rounds 10] [--sessions 400]
#   KEYS=ecdsa-p256 bench/imap.sh --sessions 0
#   KEYS="rsa2048 both" bench/imap.sh --sessions 0   # both: RSA and ECDSA certificates served together (plus a pipegate-rsa line)
#   bench/imap.sh --x25519   # clients offer X25519 and P-256, not X25519MLKEM768 (as OpenSSL 3.0 servers pick)
#   bench/imap.sh --resume   # clients resume TLS sessions (as Thunderbird and Apple Mail do); a column says how many did
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/pipegate" ./cmd/pipegate
go build -tags openssl -o "$bin/pipegate-openssl" ./cmd/pipegate
go build -o "$bin/imapbench" ./bench/imapbench
for key in ${KEYS:-rsa2048 ecdsa-p256}; do
	"$bin/imapbench" --pipegate "$bin/pipegate" --pipegate-openssl "$bin/pipegate-openssl" --key "$key" "$@"
done
