package evloop

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

func readString(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return string(b)
}

func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	var b [1]byte
	if n, err := c.Read(b[:]); n != 0 || err != io.EOF {
		t.Fatalf("read: %d bytes, %v; want EOF", n, err)
	}
}

func TestHalfClose(t *testing.T) {
	for _, kinds := range [][2]string{{"tcp", "tcp"}, {"unix", "unix"}, {"unix", "tcp"}} {
		for _, aFirst := range []bool{true, false} {
			name := kinds[0] + "-" + kinds[1] + map[bool]string{true: " a first", false: " b first"}[aFirst]
			t.Run(name, func(t *testing.T) {
				g := newGroup(t, Config{Loops: 1})
				tp := addPair(t, g, kinds[0], kinds[1], core.Options{})
				first, second, side := tp.c1, tp.c2, core.SideA
				if !aFirst {
					first, second, side = tp.c2, tp.c1, core.SideB
				}
				first.Write([]byte("hello"))
				closeWrite(t, first)
				if got := readString(t, second, 5); got != "hello" {
					t.Fatalf("got %q", got)
				}
				expectEOF(t, second)
				// The other direction still flows after the half-close.
				second.Write([]byte("world!"))
				if got := readString(t, first, 6); got != "world!" {
					t.Fatalf("got %q", got)
				}
				closeWrite(t, second)
				expectEOF(t, first)
				s := tp.wait(t)
				expect(t, s, side, core.ReasonEOF)
				up, down := int64(5), int64(6)
				if !aFirst {
					up, down = down, up
				}
				if s.BytesAToB != up || s.BytesBToA != down || s.Err != nil {
					t.Fatalf("stats %+v", s)
				}
			})
		}
	}
}

func TestLinger(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addPair(t, g, "tcp", "tcp", core.Options{HalfCloseLinger: 50 * time.Millisecond})
	closeWrite(t, tp.c2)
	expectEOF(t, tp.c1)
	s := tp.wait(t) // c1 stays silent
	expect(t, s, core.SideB, core.ReasonLinger)
	expectEOF(t, tp.c2) // the group closed B
}

func TestIdleTimeout(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addPair(t, g, "tcp", "unix", core.Options{IdleTimeout: 50 * time.Millisecond, HalfCloseLinger: -1})
	tp.c1.Write([]byte("ping"))
	if got := readString(t, tp.c2, 4); got != "ping" {
		t.Fatalf("got %q", got)
	}
	s := tp.wait(t)
	expect(t, s, core.SideNone, core.ReasonIdleTimeout)
	if s.BytesAToB != 4 {
		t.Fatalf("stats %+v", s)
	}
	expectEOF(t, tp.c1)
	expectEOF(t, tp.c2)
}

func TestLifetime(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addPair(t, g, "tcp", "tcp", core.Options{MaxLifetime: 50 * time.Millisecond, IdleTimeout: time.Hour})
	expect(t, tp.wait(t), core.SideNone, core.ReasonLifetime)
	expectEOF(t, tp.c1)
}

// TestReset: B's peer writes, then resets. What B sent reaches c1, then the
// pair ends with ReasonReset on side B.
func TestReset(t *testing.T) {
	for _, noSplice := range []bool{false, true} {
		g := newGroup(t, Config{Loops: 1, NoSplice: noSplice})
		tp := addPair(t, g, "tcp", "tcp", core.Options{})
		tp.c2.Write([]byte("bye"))
		if got := readString(t, tp.c1, 3); got != "bye" {
			t.Fatalf("got %q", got)
		}
		tp.c2.(*net.TCPConn).SetLinger(0)
		tp.c2.Close()
		s := tp.wait(t)
		expect(t, s, core.SideB, core.ReasonReset)
		if !errors.Is(s.Err, syscall.ECONNRESET) || s.BytesBToA != 3 {
			t.Fatalf("stats %+v", s)
		}
		expectEOF(t, tp.c1)
	}
}

// TestResetAfterHalfClose: a side that half-closed and then resets ends the
// pair at once (not after the linger), though nothing reads or writes it.
func TestResetAfterHalfClose(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addPair(t, g, "tcp", "tcp", core.Options{HalfCloseLinger: time.Hour})
	closeWrite(t, tp.c1)
	expectEOF(t, tp.c2)
	tp.c1.(*net.TCPConn).SetLinger(0)
	tp.c1.Close()
	s := tp.wait(t)
	expect(t, s, core.SideA, core.ReasonReset)
	// Linux reports a reset in CLOSE_WAIT as EPIPE.
	if !errors.Is(s.Err, syscall.ECONNRESET) && !errors.Is(s.Err, syscall.EPIPE) {
		t.Fatalf("stats %+v", s)
	}
}

// TestResetFlushesSurvivor: bytes read from a side before its reset are
// written to the surviving side.
func TestResetFlushesSurvivor(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addPair(t, g, "tcp", "tcp", core.Options{})
	tp.c2.Write([]byte("last words"))
	tp.c2.(*net.TCPConn).SetLinger(0)
	tp.c2.Close()
	s := tp.wait(t)
	if s.Reason != core.ReasonReset && s.Reason != core.ReasonEOF {
		t.Fatalf("stats %+v", s)
	}
	got, _ := io.ReadAll(tp.c1)
	if string(got) != "last words" {
		t.Fatalf("c1 got %q", got)
	}
}

func TestShutdownGraceful(t *testing.T) {
	g, err := New(Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	tp := addPair(t, g, "tcp", "tcp", core.Options{})
	res := make(chan error, 1)
	go func() { res <- g.Shutdown(context.Background()) }()
	tp.c1.Write([]byte("x"))
	readString(t, tp.c2, 1)
	closeWrite(t, tp.c1)
	closeWrite(t, tp.c2)
	if err := <-res; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expect(t, tp.wait(t), core.SideA, core.ReasonEOF)
}

func TestShutdownForce(t *testing.T) {
	g, err := New(Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	tps := []*testPair{
		addPair(t, g, "tcp", "tcp", core.Options{}),
		addPair(t, g, "unix", "tcp", core.Options{}),
		addPair(t, g, "tcp", "unix", core.Options{}),
	}
	closeWrite(t, tps[0].c1) // one half-closed, lingering
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if n := g.Active(); n != 0 {
		t.Fatalf("Active() = %d after Shutdown", n)
	}
	for i, tp := range tps {
		s := <-tp.stats // already delivered: Shutdown waits for done callbacks
		want := core.SideNone
		if i == 0 {
			want = core.SideA
		}
		expect(t, s, want, core.ReasonShutdown)
		io.ReadAll(tp.c1)
	}
	a, b := socketPair(t, "tcp")
	defer a.Close()
	defer b.Close()
	ea, _ := FromConn(a)
	eb, _ := FromConn(b)
	if err := g.Add(ea, eb, core.Options{}, nil); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Add after Shutdown = %v", err)
	}
	ea.Close()
	eb.Close()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNoLeaks: after pairs of every ending and Shutdown, the process has the
// same open files as before (goroutines: TestMain's goleak).
func TestNoLeaks(t *testing.T) {
	// Start Go's netpoller before counting. Close both conns: one left to
	// the garbage collector would be closed by its finalizer mid-count.
	warm, warm2 := socketPair(t, "tcp")
	warm.Close()
	warm2.Close()
	before := openFDs(t)
	func() {
		g, err := New(Config{Loops: 2})
		if err != nil {
			t.Fatal(err)
		}
		var tps []*testPair
		for i := 0; i < 20; i++ {
			tp := addPair(t, g, "tcp", "unix", core.Options{IdleTimeout: time.Duration(i%3) * 20 * time.Millisecond})
			tps = append(tps, tp)
			tp.c1.Write(pattern[:1000*i])
			if i%2 == 0 {
				closeWrite(t, tp.c1)
			}
		}
		shutdownNow(g)
		for _, tp := range tps {
			<-tp.stats
			tp.c1.Close()
			tp.c2.Close()
		}
	}()
	if after := openFDs(t); after != before {
		t.Fatalf("%d open files before, %d after", before, after)
	}
}

func TestFromConnRejects(t *testing.T) {
	a, b := socketPair(t, "tcp")
	defer a.Close()
	defer b.Close()
	type wrapped struct{ net.Conn }
	if _, err := FromConn(wrapped{a}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("FromConn(wrapper) = %v", err)
	}
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := FromConn(u); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("FromConn(udp) = %v", err)
	}
	// a is untouched and still works.
	a.Write([]byte("ok"))
	if got := readString(t, b, 2); got != "ok" {
		t.Fatalf("got %q", got)
	}
	// TakePair is all or nothing: a qualifies, the wrapper does not.
	if _, _, err := TakePair(a, wrapped{b}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("TakePair(tcp, wrapper) = %v", err)
	}
	if !Qualifies(a) || Qualifies(wrapped{a}) {
		t.Fatal("Qualifies is wrong")
	}
	b.Write([]byte("still"))
	if got := readString(t, a, 5); got != "still" {
		t.Fatalf("got %q", got)
	}
	g := newGroup(t, Config{Loops: 1})
	if err := g.Add(Endpoint{}, Endpoint{}, core.Options{}, nil); err == nil {
		t.Fatal("Add of invalid endpoints succeeded")
	}
}

// TestPairSize: a plain pair stays within the runtime's 416-byte size
// class (the memory an idle pair costs, with the fd map and timer slot);
// what only TLS pairs need is allocated apart.
func TestPairSize(t *testing.T) {
	if n := unsafe.Sizeof(pair{}); n > 416 {
		t.Fatalf("pair is %d bytes, over the 416-byte size class", n)
	}
}
