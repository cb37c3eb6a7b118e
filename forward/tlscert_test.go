package forward

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestForwardLogsCertificates: a forward that terminates TLS says which
// certificate it serves, and an expired one (served all the same, as
// nginx does) is a warning, as in the mail daemon.
func TestForwardLogsCertificates(t *testing.T) {
	ca := tlstest.NewCA(t)
	certFile, keyFile := ca.IssueExpired(t, "127.0.0.1")
	up := startUpstream(t, nil, testserver.Echo)
	cfgFile := filepath.Join(t.TempDir(), "fwd.yaml")
	cfg := "forwards:\n  - name: web\n    listen: 127.0.0.1:0\n    to: [" + up + "]\n    tls:\n      cert: " + certFile + "\n      key: " + keyFile + "\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dc, err := LoadFile(cfgFile, TLSCache{})
	if err != nil {
		t.Fatal(err)
	}
	rec := newLogRecorder()
	set := NewSet(Deps{Log: slog.New(rec)})
	t.Cleanup(func() { set.Shutdown(context.Background()) })
	if err := set.Apply(dc.Forwards, Drain{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	r := rec.wait(t, "forward tls certificate", 1)
	if r["level"] != "WARN" || r["forward"] != "web" || !strings.Contains(r["cert"], "EXPIRED") || r["file"] != certFile {
		t.Fatalf("certificate log line %v; want WARN naming forward web, EXPIRED and %s", r, certFile)
	}
}
