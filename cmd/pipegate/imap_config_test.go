package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pipegate/pipegate/internal/tlstest"
)

// writeIMAPFiles writes a config and its cert, key, CA and routes files
// (relative names, resolved against the config's folder) and returns the
// config's path.
func writeIMAPFiles(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	copyFile(t, cert, filepath.Join(dir, "server.crt"))
	copyFile(t, key, filepath.Join(dir, "server.key"))
	copyFile(t, ca.CertFile(t), filepath.Join(dir, "backend-ca.crt"))
	routes := "routes:\n  - account: alice@a.test\n    backend: imap://127.0.0.1:14301\n  - domain: b.test\n    backend: imaps://127.0.0.1:19932\ndefault: imap+starttls://127.0.0.1:14301\n"
	writeTestFile(t, filepath.Join(dir, "routes.yaml"), routes)
	path := filepath.Join(dir, "imap.yaml")
	writeTestFile(t, path, config)
	return path
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, to, string(b))
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issueConfig is the file from the issue, with relative paths.
const issueConfig = `listen:
  - addr: 127.0.0.1:1143
  - addr: 127.0.0.1:1993
    tls: true
tls:
  cert: server.crt
  key: server.key
backend_tls:
  ca: backend-ca.crt
routes_file: routes.yaml
`
