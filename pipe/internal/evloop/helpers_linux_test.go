package evloop

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/procfs"
	"github.com/pipegate/pipegate/pipe/internal/core"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// socketPair returns two connected stream sockets of the given kind
// ("tcp" or "unix") as Go conns.
func socketPair(t testing.TB, kind string) (net.Conn, net.Conn) {
	t.Helper()
	switch kind {
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c, s
	case "unix":
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		var cs [2]net.Conn
		for i, fd := range fds {
			f := os.NewFile(uintptr(fd), "socketpair")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			cs[i] = c
		}
		return cs[0], cs[1]
	}
	t.Fatalf("unknown socket kind %q", kind)
	return nil, nil
}

// testPair is a pair in a Group as its two outer peers see it: c1 talks to
// side A, c2 to side B.
type testPair struct {
	c1, c2 net.Conn
	stats  chan core.Result
	calls  atomic.Int32
}

// addPair connects c1 -(kindA)- A | group | B -(kindB)- c2.
func addPair(t testing.TB, g *Group, kindA, kindB string, opts core.Options) *testPair {
	t.Helper()
	c1, a := socketPair(t, kindA)
	b, c2 := socketPair(t, kindB)
	ea, eb, err := TakePair(a, b)
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPair{c1: c1, c2: c2, stats: make(chan core.Result, 1)}
	t.Cleanup(func() { c1.Close(); c2.Close() })
	err = g.Add(ea, eb, opts, func(s core.Result) {
		if tp.calls.Add(1) != 1 {
			t.Errorf("done called more than once: %+v", s)
			return
		}
		tp.stats <- s
	})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// wait returns the pair's Stats; the test's own timeout bounds it.
func (tp *testPair) wait(t testing.TB) core.Result {
	t.Helper()
	return <-tp.stats
}

func newGroup(t testing.TB, cfg Config) *Group {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func closeWrite(t testing.TB, c net.Conn) {
	t.Helper()
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

func expect(t testing.TB, s core.Result, first core.Side, why core.Reason) {
	t.Helper()
	if s.FirstEnd != first || s.Reason != why {
		t.Fatalf("stats: first end %s, reason %s (err %v); want %s, %s", s.FirstEnd, s.Reason, s.Err, first, why)
	}
	if s.End.Before(s.Start) {
		t.Fatalf("stats: end %v before start %v", s.End, s.Start)
	}
}

func openFDs(t testing.TB) int {
	t.Helper()
	n, err := procfs.OpenFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func shutdownNow(g *Group) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	return g.Shutdown(ctx)
}
