#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need, then runs
# gofmt, go vet, staticcheck and the race-enabled test suite with the real
# servers (Dovecot, Postfix, OpenLDAP, PostgreSQL, Redis, HAProxy) required.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start as real peers (on loopback only).
pkgs=(dovecot-imapd dovecot-pop3d dovecot-submissiond dovecot-managesieved sieve-connect fetchmail swaks msmtp isync postfix sasl2-bin libsasl2-modules cyrus-common slapd ldap-utils postgresql redis-server haproxy curl strace openssl libssl-dev gcc)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Cyrus's imapd and pop3d (a second real backend) cannot be installed beside
# Dovecot's: cyrus-imapd and dovecot-imapd both provide imap-server (and the
# pop3d packages pop3-server). cyrus-common (installed above: master,
# timsieved, lmtpd and the libraries) runs them from /usr/lib/cyrus/bin, so
# the two packages are unpacked there, not installed.
if [ ! -x /usr/lib/cyrus/bin/imapd ] || [ ! -x /usr/lib/cyrus/bin/pop3d ]; then
  echo "== unpacking cyrus-imapd and cyrus-pop3d"
  debs=$(mktemp -d)
  chown _apt "$debs" 2>/dev/null || true # apt-get download writes as _apt where it can
  (cd "$debs" && { apt-get download -qq cyrus-imapd cyrus-pop3d 2>/dev/null ||
    { apt-get update -qq && apt-get download -qq cyrus-imapd cyrus-pop3d; }; })
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" /; done
  rm -rf "$debs"
fi

export PATH="$PATH:$(go env GOPATH)/bin"
if ! command -v staticcheck >/dev/null; then
  echo "== installing staticcheck"
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

echo "== go mod tidy -diff"
go mod tidy -diff
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...
echo "== build and vet for macOS, tests included (the goroutine flavour without Linux specifics)"
GOOS=darwin go build ./...
GOOS=darwin go vet ./...
echo "== go test -race"
PIPEGATE_REQUIRE_REAL=1 go test -race -count=1 -timeout 15m ./...
echo "== build tag openssl (RSA certificate keys sign through libcrypto): vet, staticcheck, tlsconf tests"
go vet -tags openssl ./tlsconf/...
staticcheck -tags openssl ./tlsconf/...
go build -tags openssl -o /dev/null ./cmd/pipegate
PIPEGATE_REQUIRE_REAL=1 go test -tags openssl -race -count=1 ./tlsconf/...
