package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// servedLeaf is the DER leaf a handshake on cfg would get now.
func servedLeaf(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Certificates[0].Certificate[0]
}

// TestReloadKeepsCertificatesUntilApplied: a reload re-reads the
// certificate files of a running forward, but serves them only once the
// whole reload succeeded. One that fails elsewhere (a typo in another
// forward) leaves the old certificate in use; one that succeeds serves the
// new one from Set.Apply on.
func TestReloadKeepsCertificatesUntilApplied(t *testing.T) {
	ca := tlstest.NewCA(t)
	certA, keyA := ca.Issue(t, "127.0.0.1")
	certB, keyB := ca.Issue(t, "127.0.0.1")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
	configtest.CopyFile(t, certA, cert)
	configtest.CopyFile(t, keyA, key)
	good := fmt.Sprintf("forwards:\n  - name: web\n    listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    tls: {cert: %s, key: %s}\n", cert, key)
	path := writeConfig(t, good)
	cache := TLSCache{}
	loaded, err := LoadFile(path, cache)
	if err != nil {
		t.Fatal(err)
	}
	set := NewSet(Deps{Log: slog.New(slog.DiscardHandler)})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		set.Shutdown(ctx)
	}()
	if err := set.Apply(loaded.Forwards, Drain{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	running := loaded.Forwards[0].TLS
	before := servedLeaf(t, running)

	configtest.CopyFile(t, certB, cert)
	configtest.CopyFile(t, keyB, key)
	bad := good + "  - name: other\n    listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    balance: bogus\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path, cache); err == nil {
		t.Fatal("LoadFile of a bad file: no error")
	}
	if !bytes.Equal(servedLeaf(t, running), before) {
		t.Error("a reload that failed swapped the served certificate")
	}

	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded, err := LoadFile(path, cache)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(servedLeaf(t, running), before) {
		t.Error("the new certificate was served before the reload was applied")
	}
	if err := set.Apply(reloaded.Forwards, Drain{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(servedLeaf(t, running), before) {
		t.Error("after the reload the old certificate is still served")
	}
}

// TestTLSErrorsNameTheirField: an error in the client CA, the ticket keys
// or the curves of a forward names that field (and its line), not
// tls.cert.
func TestTLSErrorsNameTheirField(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	dir := t.TempDir()
	noPEM := filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	zeros := filepath.Join(dir, "ticket.keys")
	if err := os.WriteFile(zeros, []byte(strings.Repeat("0", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for field, block := range map[string]string{
		"tls.client_ca":   fmt.Sprintf("{cert: %s, key: %s, client_ca: %s}", cert, key, noPEM),
		"tls.ticket_keys": fmt.Sprintf("{cert: %s, key: %s, ticket_keys: %s}", cert, key, zeros),
	} {
		path := writeConfig(t, "forwards:\n  - name: web\n    listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    tls: "+block+"\n")
		if _, err := LoadFile(path, TLSCache{}); err == nil || !strings.Contains(err.Error(), ":5: forwards[0]."+field+":") {
			t.Errorf("bad %s: %v, want it named with its line", field, err)
		}
	}
}

// TestUnixTLSUpstreamNeedsServerName: TLS to a unix: upstream needs a name
// to verify the certificate against: check-config (LoadFile) says so,
// naming the field, rather than the start failing.
func TestUnixTLSUpstreamNeedsServerName(t *testing.T) {
	path := writeConfig(t, "forwards:\n  - name: db\n    listen: 127.0.0.1:0\n    to: [\"unix:/nonexistent.sock\"]\n    to_tls: {}\n")
	if _, err := LoadFile(path, TLSCache{}); err == nil || !strings.Contains(err.Error(), "forwards[0].to_tls.server_name: missing") {
		t.Errorf("LoadFile: %v, want forwards[0].to_tls.server_name named", err)
	}
	path = writeConfig(t, "forwards:\n  - name: db\n    listen: 127.0.0.1:0\n    to: [\"unix:/nonexistent.sock\"]\n    to_tls: {server_name: db.internal}\n")
	if _, err := LoadFile(path, TLSCache{}); err != nil {
		t.Errorf("with a server name: %v", err)
	}
}
