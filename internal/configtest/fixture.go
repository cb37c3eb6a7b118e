package configtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/tlstest"
)

// Secret is what the fixture's password file "pw" holds (and a newline).
const Secret = "s3cret"

// Fixture writes the files a fuzzed config may name, relative to its
// folder: a certificate and key (server.crt, server.key), a CA (ca.crt,
// backend-ca.crt), a client pair (client.crt, client.key), ticket keys
// (ticket.keys), a secret (pw), an empty file (empty) and a routes file
// (routes.yaml).
func Fixture(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	ccert, ckey := ca.ClientCertFiles(t, "client")
	for name, from := range map[string]string{
		"server.crt": cert, "server.key": key, "ca.crt": ca.CertFile(t), "backend-ca.crt": ca.CertFile(t),
		"client.crt": ccert, "client.key": ckey,
	} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{
		"pw": Secret + "\n", "empty": "", "ticket.keys": strings.Repeat("ab", 32) + "\n",
		"routes.yaml": "routes:\n  - account: alice@a.test\n    backend: imap://127.0.0.1:14301\n  - domain: b.test\n    backend: imaps://127.0.0.1:19932\ndefault: imap+starttls://127.0.0.1:14301\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Dir is a new folder with links to the fixture's files.
func Dir(t testing.TB, fixture string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(fixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(fixture, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// WriteConfig writes config as imap.yaml beside a new Fixture's files
// (relative names in it resolve against its folder) and gives its path.
// The routes file sends alice@a.test to imap://127.0.0.1:14301, b.test to
// imaps://127.0.0.1:19932, and the rest to imap+starttls://127.0.0.1:14301;
// backend-ca.crt is the CA of server.crt.
func WriteConfig(t testing.TB, config string) string {
	t.Helper()
	return WriteFile(t, Fixture(t), "imap.yaml", []byte(config))
}

// WriteFile writes data as name into a new folder with links to the
// fixture's files (Dir), and gives the file's path.
func WriteFile(t testing.TB, fixture, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(Dir(t, fixture), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// CopyFile copies file from to to (mode 0600), as an operator replaces a
// certificate before a reload.
func CopyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
