package tlsconf

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestCurves: Curves limits the key exchange groups: a Go client (which
// offers X25519MLKEM768 and X25519 key shares) gets X25519 when the
// hybrids are left out, X25519MLKEM768 by default, and P-256 when only
// the NIST curves are allowed (after a HelloRetryRequest); unknown names
// are refused when the server is loaded.
func TestCurves(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	for _, tt := range []struct {
		curves string
		want   tls.CurveID
	}{
		{"", tls.X25519MLKEM768},
		{"x25519,P-256", tls.X25519},
		{"prime256v1,P-384", tls.CurveP256},
		{"X25519MLKEM768,X25519", tls.X25519MLKEM768},
	} {
		s, err := LoadServer(ServerFiles{Cert: cert, Key: key, Curves: tt.curves})
		if err != nil {
			t.Fatalf("%q: %v", tt.curves, err)
		}
		st, err := dial(startTLS(t, s.Config()), &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatalf("%q: %v", tt.curves, err)
		}
		if st.CurveID != tt.want {
			t.Errorf("curves %q: negotiated %v, want %v", tt.curves, st.CurveID, tt.want)
		}
	}
	_, err := LoadServer(ServerFiles{Cert: cert, Key: key, Curves: "X25519,brainpool"})
	if err == nil || !strings.Contains(err.Error(), `"brainpool"`) || !strings.Contains(err.Error(), "X25519MLKEM768") {
		t.Fatalf("unknown group: %v", err)
	}
}
