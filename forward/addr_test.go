package forward

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestSplitAddr(t *testing.T) {
	for _, tc := range []struct {
		in, network, address string
		ok                   bool
	}{
		{"127.0.0.1:80", "tcp", "127.0.0.1:80", true},
		{"[::1]:443", "tcp", "[::1]:443", true},
		{"localhost:imaps", "tcp", "localhost:imaps", true},
		{"unix:/run/x.sock", "unix", "/run/x.sock", true},
		{"unix:", "", "", false},
		{"127.0.0.1", "", "", false},
		{"127.0.0.1:", "", "", false},
		{"127.0.0.1:70000", "", "", false},
		{"a b:80", "", "", false},
	} {
		n, a, err := SplitAddr(tc.in)
		if (err == nil) != tc.ok || n != tc.network || a != tc.address {
			t.Errorf("SplitAddr(%q) = %q, %q, %v", tc.in, n, a, err)
		}
	}
}

// A socket file left by a crashed process is replaced; a live socket and
// a regular file are not.
func TestListenUnixStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens: stale
	live, err := Listen("unix:" + path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer live.Close()
	if _, err := Listen("unix:" + path); err == nil {
		t.Fatal("second listener on a live socket: no error")
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep me"), 0o600)
	if _, err := Listen("unix:" + file); err == nil {
		t.Fatal("listening over a regular file: no error")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatal("regular file removed")
	}
}
