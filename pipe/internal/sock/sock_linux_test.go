//go:build linux

package sock

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go acceptInto(ln, ch)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-ch
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func acceptInto(ln net.Listener, ch chan<- net.Conn) {
	c, _ := ln.Accept()
	ch <- c
}

func rawOf(t *testing.T, c *net.TCPConn) syscall.RawConn {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// TestSpliceThroughPipe: bytes queued on one socket are spliced to another
// through a pooled pipe taken inside the read callback.
func TestSpliceThroughPipe(t *testing.T) {
	src, srcPeer := tcpPair(t)
	dst, dstPeer := tcpPair(t)
	if _, err := srcPeer.Write([]byte("spliced bytes")); err != nil {
		t.Fatal(err)
	}
	if err := WaitReadable(rawOf(t, src)); err != nil {
		t.Fatal(err)
	}
	if q, err := Queued(rawOf(t, src)); err != nil || q != 13 {
		t.Fatalf("Queued = %d, %v; want 13", q, err)
	}
	var p *Pipe
	err := rawOf(t, src).Read(func(fd uintptr) bool {
		if p == nil {
			var err error
			if p, err = GetPipe(); err != nil {
				t.Error(err)
				return true
			}
		}
		return !p.TrySpliceIn(fd, MaxSplice)
	})
	if err != nil || p == nil {
		t.Fatalf("read callback: %v", err)
	}
	if n, err := p.LastIn(); n != 13 || err != nil || p.Buffered() != 13 {
		t.Fatalf("LastIn = %d, %v (buffered %d)", n, err, p.Buffered())
	}
	if n, err := p.SpliceOut(rawOf(t, dst)); n != 13 || err != nil {
		t.Fatalf("SpliceOut = %d, %v", n, err)
	}
	PutPipe(p)
	got := make([]byte, 13)
	if _, err := io.ReadFull(dstPeer, got); err != nil || string(got) != "spliced bytes" {
		t.Fatalf("peer got %q, %v", got, err)
	}
	DrainPipes()
}

// TestWaitKeepsSocketError: waiting must not consume a pending reset, so
// that the next read reports ECONNRESET rather than a clean EOF.
func TestWaitKeepsSocketError(t *testing.T) {
	c, peer := tcpPair(t)
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := WaitReadable(rawOf(t, c)); err != nil {
		t.Fatal(err)
	}
	// SO_LINGER 0 makes the peer's close send RST.
	peer.SetLinger(0)
	peer.Close()
	b := NewBuffer(16)
	var reads []int
	var lastErr error
	for range 4 {
		if err := WaitReadable(rawOf(t, c)); err != nil {
			t.Fatal(err)
		}
		err := rawOf(t, c).Read(func(fd uintptr) bool { return !b.TryRead(fd) })
		if err != nil {
			t.Fatal(err)
		}
		n, err := b.LastRead()
		reads = append(reads, n)
		if err != nil || n == 0 {
			lastErr = err
			break
		}
	}
	if !errors.Is(lastErr, syscall.ECONNRESET) {
		t.Fatalf("reads %v ended with %v, want ECONNRESET", reads, lastErr)
	}
}

// TestPoolBounded: the pool keeps at most maxFreePipes pipes.
func TestPoolBounded(t *testing.T) {
	var ps []*Pipe
	for range maxFreePipes + 4 {
		p, err := GetPipe()
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		PutPipe(p)
	}
	pool.mu.Lock()
	n := len(pool.free)
	pool.mu.Unlock()
	if n != maxFreePipes {
		t.Fatalf("%d pipes pooled, want %d", n, maxFreePipes)
	}
	DrainPipes()
}
