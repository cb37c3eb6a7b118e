package tlsrec

import (
	"errors"
	"testing"
)

// needSupported skips tests that carry on a connection where this Go
// release's crypto/tls is not read (or the tag pipegate_notlsrec is set).
func needSupported(t *testing.T) {
	t.Helper()
	if !Supported {
		t.Skip("tlsrec does not read this Go release's crypto/tls")
	}
}

// TestExportOnUnsupportedRelease: where Supported is false, Export refuses
// a TLS 1.3 connection with ErrGoRelease and leaves it working; where it
// is true, Export takes it. Run with -tags pipegate_notlsrec to test the
// fallback on a supported release.
func TestExportOnUnsupportedRelease(t *testing.T) {
	p := newTLSPair(t, 0)
	p.chat(t)
	st, err := Export(p.server)
	if Supported {
		if err != nil || st == nil {
			t.Fatalf("Export on a supported release: %v", err)
		}
		return
	}
	if st != nil || !errors.Is(err, ErrGoRelease) || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Export = %v, %v; want nil and ErrGoRelease", st, err)
	}
	p.chat(t) // crypto/tls carries on: its sequence numbers were not touched
}
