//go:build openssl

package osslrsa

import "testing"

// TestBuiltWithOpenSSL: the tag openssl must give libcrypto, not the
// fallback (it would if cgo were off), or the other tests would skip.
func TestBuiltWithOpenSSL(t *testing.T) {
	if !Available {
		t.Fatal("built with -tags openssl but without libcrypto: is cgo off (CGO_ENABLED=0, no gcc)?")
	}
	if Version() == "" {
		t.Fatal("no libcrypto version")
	}
	t.Log(Version())
}
