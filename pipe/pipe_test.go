package pipe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// harness runs one pipe between two peers driven by the test.
type harness struct {
	ka, kb       kind
	aPeer, bPeer net.Conn
	a, b         net.Conn // what the pipe was given
	res          chan Result
	calls        atomic.Int32
}

// startOn runs a pipe between peers of kinds ka and kb on flavour fl.
func startOn(t *testing.T, fl flavour, ka, kb kind, opts *Options) *harness {
	t.Helper()
	h := &harness{ka: ka, kb: kb, res: make(chan Result, 2)}
	h.a, h.aPeer = side(t, ka)
	h.b, h.bPeer = side(t, kb)
	fl.enter(t, h.a, h.b, opts, h.afterClose)
	return h
}

func (h *harness) afterClose(r Result) {
	h.calls.Add(1)
	h.res <- r
}

// wait returns the result; the pipe must end within a generous bound.
func (h *harness) wait(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-h.res:
		if n := h.calls.Load(); n != 1 {
			t.Fatalf("afterClose called %d times", n)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("pipe %s-%s did not end", h.ka, h.kb)
	}
	return Result{}
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, buf)
	}
	return string(buf)
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// readToEnd reads until EOF or an error and returns the bytes.
func readToEnd(c net.Conn) string {
	var b bytes.Buffer
	_, _ = io.Copy(&b, c)
	return b.String()
}

var pairs = [][2]kind{
	{kTCP, kTCP}, {kTCP, kUnix}, {kUnix, kTCP}, {kUnix, kUnix},
	{kTLS, kTCP}, {kTCP, kTLS}, {kTLS, kTLS}, {kTLSLazy, kTCP}, {kTLS, kUnix},
	{kPrefix, kTCP}, {kPrefix, kUnix}, {kTCP, kPrefix}, {kPrefixTLS, kTLS}, {kPrefix, kTLS},
	{kNetPipe, kTCP}, {kTCP, kNetPipe}, {kTLSPipe, kTCP}, {kNetPipe, kNetPipe},
	{kTLSNoDL, kTCP}, {kTCP, kTLSNoDL},
}

func pairName(p [2]kind) string { return string(p[0]) + "-" + string(p[1]) }

// TestHalfClose: bytes flow both ways; A's EOF reaches B as EOF while B→A
// keeps flowing; the pipe ends with EOF once B ends too.
func TestHalfClose(t *testing.T) {
	forFlavours(t, func(t *testing.T, fl flavour) { testHalfClose(t, fl) })
}

func testHalfClose(t *testing.T, fl flavour) {
	for _, pr := range pairs {
		t.Run(pairName(pr), func(t *testing.T) {
			h := startOn(t, fl, pr[0], pr[1], nil)
			var wantAB, wantBA string
			if pr[0].hasPrefix() {
				wantAB = prefixGreeting
			}
			if pr[1].hasPrefix() {
				wantBA = prefixGreeting
			}
			write(t, h.aPeer, "ping from a")
			if got := readN(t, h.bPeer, len(wantAB)+11); got != wantAB+"ping from a" {
				t.Fatalf("b got %q", got)
			}
			write(t, h.bPeer, "pong from b")
			if got := readN(t, h.aPeer, len(wantBA)+11); got != wantBA+"pong from b" {
				t.Fatalf("a got %q", got)
			}
			if !pr[0].canCloseWrite() {
				// Without half-close the peer can only close: B still sees EOF.
				h.aPeer.Close()
				if rest := readToEnd(h.bPeer); rest != "" {
					t.Fatalf("b read %q after a closed, want EOF", rest)
				}
				h.bPeer.Close()
				r := h.wait(t)
				if r.FirstEnd != SideA {
					t.Fatalf("FirstEnd = %s, want a (%+v)", r.FirstEnd, r)
				}
				return
			}
			closeWrite(t, h.aPeer)
			if rest := readToEnd(h.bPeer); rest != "" {
				t.Fatalf("b read %q after a's EOF, want EOF", rest)
			}
			if !pr[1].canCloseWrite() {
				h.bPeer.Close()
				h.wait(t)
				return
			}
			write(t, h.bPeer, "still flowing")
			if got := readN(t, h.aPeer, 13); got != "still flowing" {
				t.Fatalf("a got %q after half-close", got)
			}
			closeWrite(t, h.bPeer)
			if rest := readToEnd(h.aPeer); rest != "" {
				t.Fatalf("a read %q, want EOF", rest)
			}
			r := h.wait(t)
			if r.Reason != ReasonEOF || r.FirstEnd != SideA || r.Err != nil {
				t.Fatalf("result %+v, want eof, first a, no error", r)
			}
			if want := int64(len(wantAB) + 11); r.BytesAToB != want {
				t.Fatalf("BytesAToB = %d, want %d", r.BytesAToB, want)
			}
			if want := int64(len(wantBA) + 11 + 13); r.BytesBToA != want {
				t.Fatalf("BytesBToA = %d, want %d", r.BytesBToA, want)
			}
			if !r.End.After(r.Start) || r.Duration() <= 0 {
				t.Fatalf("times %v .. %v", r.Start, r.End)
			}
		})
	}
}

// TestLimits: idle timeout, lifetime and linger end the pipe with their
// reason; both peers then see their conns closed.
func TestLimits(t *testing.T) {
	forFlavours(t, testLimits)
}

func testLimits(t *testing.T, fl flavour) {
	const short = 50 * time.Millisecond
	cases := []struct {
		name      string
		ka, kb    kind
		opts      Options
		halfClose bool // a exchanges a byte with b, then half-closes
		want      Reason
		first     Side // checked unless anyFirst
		anyFirst  bool
	}{
		{"idle-tcp", kTCP, kTCP, Options{IdleTimeout: short}, false, ReasonIdleTimeout, SideNone, false},
		{"idle-tls", kTLS, kTLS, Options{IdleTimeout: short}, false, ReasonIdleTimeout, SideNone, false},
		{"idle-netpipe", kNetPipe, kTCP, Options{IdleTimeout: short}, false, ReasonIdleTimeout, SideNone, false},
		{"lifetime-tcp", kTCP, kUnix, Options{MaxLifetime: short}, false, ReasonLifetime, SideNone, false},
		{"lifetime-tls", kTLS, kTCP, Options{MaxLifetime: short}, false, ReasonLifetime, SideNone, false},
		{"linger-tcp", kTCP, kTCP, Options{HalfCloseLinger: short}, true, ReasonLinger, SideA, false},
		{"linger-tls", kTLS, kTCP, Options{HalfCloseLinger: short}, true, ReasonLinger, SideA, false},
		{"linger-to-tls", kTCP, kTLS, Options{HalfCloseLinger: short}, true, ReasonLinger, SideA, false},
		// The idle limit, when shorter, also ends a half-closed pipe (which
		// side ended first depends on the timing, so it is not checked).
		{"idle-shorter-than-linger", kTCP, kTCP, Options{IdleTimeout: short, HalfCloseLinger: time.Hour}, true, ReasonIdleTimeout, SideNone, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := startOn(t, fl, c.ka, c.kb, &c.opts)
			if c.halfClose && !c.anyFirst {
				// Timers other than the linger are off: no race with the clock.
				write(t, h.aPeer, "x")
				readN(t, h.bPeer, 1)
			}
			if c.halfClose {
				closeWrite(t, h.aPeer)
				if rest := readToEnd(h.bPeer); rest != "" {
					t.Fatalf("b read %q, want EOF", rest)
				}
			}
			r := h.wait(t)
			if r.Reason != c.want || (!c.anyFirst && r.FirstEnd != c.first) {
				t.Fatalf("result %+v, want %s first %s", r, c.want, c.first)
			}
			// Both peers see the end.
			readToEnd(h.aPeer)
			readToEnd(h.bPeer)
		})
	}
}

// TestLingerWaitsForever: a negative linger keeps a half-closed pipe open
// until the other side ends.
func TestLingerNegative(t *testing.T) {
	forFlavours(t, testLingerNegative)
}

func testLingerNegative(t *testing.T, fl flavour) {
	h := startOn(t, fl, kTCP, kTCP, &Options{HalfCloseLinger: -1})
	closeWrite(t, h.aPeer)
	readToEnd(h.bPeer)
	write(t, h.bPeer, "later")
	if got := readN(t, h.aPeer, 5); got != "later" {
		t.Fatalf("a got %q", got)
	}
	closeWrite(t, h.bPeer)
	if r := h.wait(t); r.Reason != ReasonEOF {
		t.Fatalf("result %+v, want eof", r)
	}
}

// TestJoinCancel: cancelling Join's context ends it with ReasonShutdown.
func TestJoinCancel(t *testing.T) {
	for _, pr := range [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}, {kNetPipe, kNetPipe}} {
		t.Run(pairName(pr), func(t *testing.T) {
			a, aPeer := side(t, pr[0])
			b, bPeer := side(t, pr[1])
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan Result, 1)
			go joinInto(ctx, a, b, done)
			write(t, aPeer, "hi")
			readN(t, bPeer, 2)
			cancel()
			r := <-done
			if r.Reason != ReasonShutdown || r.FirstEnd != SideNone || r.BytesAToB != 2 {
				t.Fatalf("result %+v, want shutdown, 2 bytes a→b", r)
			}
		})
	}
}

func joinInto(ctx context.Context, a, b net.Conn, done chan<- Result) {
	done <- Join(ctx, a, b, nil)
}

// TestReset: a reset on one side ends both; bytes it sent before the reset
// still reach the other side.
func TestReset(t *testing.T) {
	forFlavours(t, testReset)
}

func testReset(t *testing.T, fl flavour) {
	for _, pr := range [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}, {kTCP, kTLS}, {kTLS, kTLS}, {kPrefix, kUnix}, {kTCP, kNetPipe}} {
		for _, failing := range []Side{SideA, SideB} {
			k := pr[0]
			if failing == SideB {
				k = pr[1]
			}
			if !k.isTCP() {
				continue
			}
			t.Run(pairName(pr)+"-reset-"+failing.String(), func(t *testing.T) {
				h := startOn(t, fl, pr[0], pr[1], nil)
				bad, good := h.aPeer, h.bPeer
				skip := 0
				if failing == SideB {
					bad, good = h.bPeer, h.aPeer
					if pr[0].hasPrefix() {
						readN(t, h.bPeer, len(prefixGreeting))
					}
				} else if pr[1].hasPrefix() {
					skip = len(prefixGreeting)
				}
				write(t, bad, "last words")
				reset(t, bad)
				got := readToEnd(good)
				if got[skip:] != "last words" && !strings.HasPrefix(got, prefixGreeting) {
					t.Fatalf("survivor got %q, want %q", got, "last words")
				}
				r := h.wait(t)
				if r.Reason != ReasonReset || r.FirstEnd != failing || !errors.Is(r.Err, syscall.ECONNRESET) {
					t.Fatalf("result %+v (err %v), want reset by %s", r, r.Err, failing)
				}
			})
		}
	}
}

// TestResetWhileWriting: the side being written to resets while bytes flow.
func TestResetWhileWriting(t *testing.T) {
	forFlavours(t, testResetWhileWriting)
}

func testResetWhileWriting(t *testing.T, fl flavour) {
	h := startOn(t, fl, kTCP, kTCP, nil)
	go writeForever(h.aPeer)
	readN(t, h.bPeer, 1<<16)
	reset(t, h.bPeer)
	r := h.wait(t)
	if r.Reason != ReasonReset || r.FirstEnd != SideB {
		t.Fatalf("result %+v (err %v), want reset by b", r, r.Err)
	}
	h.aPeer.Close()
}

func writeForever(c net.Conn) {
	buf := make([]byte, 1<<16)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// panicConn panics on Read, as a buggy net.Conn might.
type panicConn struct{ net.Conn }

func (panicConn) Read([]byte) (int, error) { panic("boom") }

// TestConnPanics: a panicking conn ends the pipe with ReasonError, both conns
// closed, afterClose called once.
func TestConnPanics(t *testing.T) {
	forFlavours(t, testConnPanics)
}

func testConnPanics(t *testing.T, fl flavour) {
	a, _ := side(t, kNetPipe)
	b, bPeer := side(t, kTCP)
	res := make(chan Result, 2)
	var calls atomic.Int32
	fl.enter(t, panicConn{a}, b, nil, func(r Result) { calls.Add(1); res <- r })
	r := <-res
	if r.Reason != ReasonError || r.FirstEnd != SideA || r.Err == nil || !strings.Contains(r.Err.Error(), "boom") {
		t.Fatalf("result %+v, want error with the panic", r)
	}
	readToEnd(bPeer)
	if calls.Load() != 1 {
		t.Fatalf("afterClose called %d times", calls.Load())
	}
}

// TestAfterCloseAfterBothClosed: when afterClose runs, both conns are closed.
func TestAfterCloseAfterBothClosed(t *testing.T) {
	forFlavours(t, testAfterCloseAfterBothClosed)
}

func testAfterCloseAfterBothClosed(t *testing.T, fl flavour) {
	for _, pr := range [][2]kind{{kTCP, kTCP}, {kTLS, kUnix}, {kPrefix, kNetPipe}} {
		t.Run(pairName(pr), func(t *testing.T) {
			a, aPeer := side(t, pr[0])
			b, _ := side(t, pr[1])
			closed := make(chan [2]error, 1)
			fl.enter(t, a, b, &Options{IdleTimeout: 20 * time.Millisecond}, func(Result) {
				_, ea := a.Write([]byte("x"))
				_, eb := b.Write([]byte("x"))
				closed <- [2]error{ea, eb}
			})
			_ = aPeer
			errs := <-closed
			for i, err := range errs {
				if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
					t.Errorf("side %d write after close: %v, want closed", i, err)
				}
			}
		})
	}
}

// TestPathChoice: peeked bytes do not keep a socket pair off the splice
// path, and each kind of side gets the cheapest way to move bytes.
func TestPathChoice(t *testing.T) {
	cases := []struct {
		ka, kb kind
		ab, ba copyPath
	}{
		{kTCP, kTCP, pathSplice, pathSplice},
		{kTCP, kUnix, pathSplice, pathSplice},
		{kPrefix, kTCP, pathSplice, pathSplice},
		{kPrefix, kUnix, pathSplice, pathSplice},
		{kTLS, kTCP, pathTLS, pathRaw},
		{kPrefixTLS, kTLS, pathTLS, pathTLS},
		{kNetPipe, kTCP, pathBlocking, pathRaw},
	}
	for _, c := range cases {
		a, _ := side(t, c.ka)
		b, _ := side(t, c.kb)
		p := newPipe(a, b, nil, nil)
		if p.ab.path() != c.ab || p.ba.path() != c.ba {
			t.Errorf("%s-%s: paths %s, %s; want %s, %s", c.ka, c.kb, p.ab.path(), p.ba.path(), c.ab, c.ba)
		}
	}
}

// TestResetAfterHalfClose: a side that half-closed, went quiet, then
// resets. The event loops see the socket's error at once and end the pair
// as reset (asserted with an hour-long linger). The goroutine flavour
// waits only for the other side's data, so it learns of the reset at its
// next write to that side or at the linger: both are accepted there.
func TestResetAfterHalfClose(t *testing.T) {
	forFlavours(t, testResetAfterHalfClose)
}

func testResetAfterHalfClose(t *testing.T, fl flavour) {
	onLoops := fl.name == "engine-auto" && runtime.GOOS == "linux"
	opts := &Options{HalfCloseLinger: 100 * time.Millisecond}
	if onLoops {
		opts.HalfCloseLinger = time.Hour
	}
	h := startOn(t, fl, kTCP, kTCP, opts)
	write(t, h.aPeer, "x")
	readN(t, h.bPeer, 1)
	closeWrite(t, h.aPeer)
	if rest := readToEnd(h.bPeer); rest != "" {
		t.Fatalf("b read %q, want EOF", rest)
	}
	reset(t, h.aPeer)
	r := h.wait(t)
	if r.FirstEnd != SideA || (r.Reason != ReasonReset && (onLoops || r.Reason != ReasonLinger)) {
		t.Fatalf("result %+v, want reset (or linger without the loops), first a", r)
	}
}
