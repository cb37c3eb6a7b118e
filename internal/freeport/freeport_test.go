package freeport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestPortUnique: many ports in a row are distinct, and each can be
// listened on.
func TestPortUnique(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d returned twice", p)
		}
		seen[p] = true
	}
	a, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatalf("listen on %s: %v", a, err)
	}
	l.Close()
}

// TestPortBelowEphemeral: where the kernel's ephemeral range leaves room
// below it, Port's ports are there, out of reach of connections' source
// ports.
func TestPortBelowEphemeral(t *testing.T) {
	lo, hi := belowEphemeral()
	if hi-lo < minBelow {
		t.Skipf("ephemeral range leaves %d ports below it", hi-lo)
	}
	for range 50 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if p < lo || p > hi {
			t.Fatalf("port %d, not within %d-%d below the ephemeral range", p, lo, hi)
		}
	}
}

// TestClaim: a port claimed (by this or another process) is not claimed
// again while the claim is young; an old claim is taken over.
func TestClaim(t *testing.T) {
	p, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	if claim(p) {
		t.Fatalf("port %d claimed twice", p)
	}
	name := filepath.Join(os.TempDir(), "pipegate-freeport", strconv.Itoa(p))
	old := time.Now().Add(-2 * claimFor)
	if err := os.Chtimes(name, old, old); err != nil {
		t.Fatal(err)
	}
	if !claim(p) {
		t.Fatalf("an old claim of port %d was not taken over", p)
	}
}
