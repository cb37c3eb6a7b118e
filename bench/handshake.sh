#!/bin/sh
# bench/handshake.sh: TLS handshakes per second through pipegate's
# implicit-TLS port, full against resumed (session tickets from a shared
# ticket key file), for TLS 1.2, TLS 1.3 with Go's default key share
# (X25519MLKEM768) and TLS 1.3 with X25519 only, with an ECDSA P-256 and an
# RSA 2048 certificate; also the server's CPU time per handshake. One run,
# all lines interleaved (see bench/handshake/main.go). No root; libssl-dev
# for the rsa-ossl lines (pipegate built with -tags openssl).
#
#   bench/handshake.sh [--n 1000] [--rounds 3] [--workers 2]
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/pipegate" ./cmd/pipegate
go build -tags openssl -o "$bin/pipegate-openssl" ./cmd/pipegate # needs libssl-dev
go build -o "$bin/handshake" ./bench/handshake
"$bin/handshake" --pipegate "$bin/pipegate" --pipegate-openssl "$bin/pipegate-openssl" "$@"
