package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testserver"
)

// listening returns the address of each forward of set, by name.
func listening(set *Set) map[string]string {
	m := map[string]string{}
	for _, l := range set.Listening() {
		m[l.Name] = l.Addr
	}
	return m
}

// greeting connects to addr and returns what the upstream behind it says.
func greeting(t *testing.T, addr string) string {
	t.Helper()
	return roundTrip(t, dial(t, addr), "")
}

// TestSetApply: what a SIGHUP does to the forwards of a process.
func TestSetApply(t *testing.T) {
	one := startUpstream(t, nil, testserver.Greet("one"))
	two := startUpstream(t, nil, testserver.Greet("two"))
	rec := newLogRecorder()
	set := NewSet(Deps{Log: slog.New(rec)})
	drained := 0 // "removed forward drained" lines seen
	fwd := func(name, listen, up string) Config {
		return Config{Name: name, Listen: listen, Upstreams: []string{up}}
	}

	// Start: two forwards on port 0.
	if err := set.Apply([]Config{fwd("a", "127.0.0.1:0", one), fwd("b", "127.0.0.1:0", one)}, Drain{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	first := listening(set)
	if len(first) != 2 || greeting(t, first["a"]) != "one" || greeting(t, first["b"]) != "one" {
		t.Fatalf("after start: %v", first)
	}

	// a is reloaded in place (same listener, new upstream), b removed, c added.
	if err := set.Apply([]Config{fwd("a", "127.0.0.1:0", two), fwd("c", "127.0.0.1:0", one)}, Drain{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	drained++
	if r := rec.wait(t, "removed forward drained", drained); r["forward"] != "b" {
		t.Errorf("drained %v, want b", r)
	}
	now := listening(set)
	if len(now) != 2 || now["a"] != first["a"] || now["c"] == "" {
		t.Fatalf("after reload: %v (before: %v)", now, first)
	}
	if got := greeting(t, now["a"]); got != "two" {
		t.Errorf("a after reload: %q, want two", got)
	}
	if c, err := net.Dial("tcp", first["b"]); err == nil {
		c.Close()
		t.Errorf("b still accepts on %s after its removal", first["b"])
	}

	// Nothing changes when a listener cannot be opened or a config is bad.
	for _, bad := range [][]Config{
		{fwd("a", "127.0.0.1:0", two), fwd("d", now["a"], one)}, // a's port is taken
		{fwd("a", "127.0.0.1:0", one), {Name: "e", Listen: "127.0.0.1:0"}},
		{fwd("a", "127.0.0.1:0", one), fwd("a", "127.0.0.1:0", two)},
	} {
		err := set.Apply(bad, Drain{Timeout: time.Minute})
		if err == nil || !strings.HasPrefix(err.Error(), "forward ") {
			t.Errorf("Apply(%v): %v, want an error naming the forward", bad, err)
		}
		if got := listening(set); len(got) != 2 || got["a"] != now["a"] || got["c"] != now["c"] {
			t.Errorf("after a failed Apply: %v, want %v", got, now)
		}
	}
	if got := greeting(t, now["a"]); got != "two" {
		t.Errorf("a after failed Applies: %q, want two", got)
	}

	// a moves to a fixed port: new listener there, the old one drains.
	fixed := closedPort(t)
	if err := set.Apply([]Config{fwd("a", fixed, two), fwd("c", "127.0.0.1:0", one)}, Drain{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	drained++
	if r := rec.wait(t, "removed forward drained", drained); r["forward"] != "a" || r["listen"] != "127.0.0.1:0" {
		t.Errorf("drained %v, want a's old listener", r)
	}
	if got := listening(set)["a"]; got != fixed || greeting(t, fixed) != "two" {
		t.Errorf("a moved to %s, want %s", got, fixed)
	}

	// Renamed on the same fixed address: it keeps its listener.
	if err := set.Apply([]Config{fwd("a2", fixed, one), fwd("c", "127.0.0.1:0", one)}, Drain{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if got := listening(set); got["a2"] != fixed || got["a"] != "" || greeting(t, fixed) != "one" {
		t.Errorf("after rename: %v", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := set.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(set.Listening()) != 0 {
		t.Errorf("after Shutdown: %v", set.Listening())
	}
	if err := set.Apply([]Config{fwd("a", "127.0.0.1:0", one)}, Drain{Timeout: time.Minute}); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Apply after Shutdown: %v", err)
	}
}

// A removed forward drains for at most the drain given to Apply, then its
// open connections are closed.
func TestSetRetireDeadline(t *testing.T) {
	up := startUpstream(t, nil, func(c net.Conn) {
		c.Write([]byte("hi"))
		io.Copy(io.Discard, c) // holds the connection open until the forward closes it
	})
	rec := newLogRecorder()
	set := NewSet(Deps{Log: slog.New(rec)})
	t.Cleanup(func() { set.Shutdown(context.Background()) })
	if err := set.Apply([]Config{{Name: "a", Listen: "127.0.0.1:0", Upstreams: []string{up}}}, Drain{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, listening(set)["a"])
	c.SetDeadline(time.Now().Add(testTimeout))
	var b [2]byte
	if _, err := c.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	if err := set.Apply(nil, Drain{Timeout: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if r := rec.wait(t, "removed forward: drain timeout reached; its open connections were closed", 1); r["forward"] != "a" {
		t.Errorf("log %v", r)
	}
	if n, err := c.Read(b[:]); err == nil {
		t.Errorf("read %d bytes after the drain deadline, want the connection closed", n)
	}
}

// A Set spreads its Shutdown over the last Apply's Drain.Spread.
func TestSetShutdownSpread(t *testing.T) {
	up := startUpstream(t, nil, testserver.Echo)
	rec := newLogRecorder()
	set := NewSet(Deps{Log: slog.New(rec)})
	cfg := Config{Name: "a", Listen: "127.0.0.1:0", Upstreams: []string{up}, GoAccept: true}
	if err := set.Apply([]Config{cfg}, Drain{Timeout: time.Minute, Spread: time.Minute}); err != nil {
		t.Fatal(err)
	}
	piped(t, listening(set)["a"])
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := set.Shutdown(ctx); err == nil {
		t.Error("Shutdown: no error, want one saying a pair was stopped")
	}
	if r := rec.wait(t, "connection closed", 1); r["reason"] != "stopped" {
		t.Errorf("log: %v, want reason=stopped", r)
	}
}

// TestCheckUnique: two forwards that could not listen at once are refused
// however their addresses are written (a reload checks its list so), the
// later one named; port 0 and distinct addresses are fine.
func TestCheckUnique(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		bad  bool
	}{
		{"0.0.0.0:18081", ":18081", true},
		{"[::]:18081", "127.0.0.1:18081", true},
		{"127.0.0.1:18081", "[::ffff:127.0.0.1]:18081", true},
		{"unix:/run/a.sock", "unix:/run/./a.sock", true},
		{"127.0.0.1:18081", "127.0.0.2:18081", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		{":18081", ":18082", false},
	} {
		cfgs := []Config{{Name: "a", Listen: tc.a}, {Name: "b", Listen: tc.b}}
		i, err := CheckUnique(cfgs)
		if tc.bad != (err != nil) || tc.bad && i != 1 {
			t.Errorf("%s and %s: forward %d, %v; want an error on forward 1: %v", tc.a, tc.b, i, err, tc.bad)
		}
	}
}
