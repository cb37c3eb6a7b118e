package pipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// stopper is one way of starting a pipe that returns a Handle.
type stopper struct {
	name  string
	start func(t *testing.T, a, b net.Conn, afterClose func(Result)) *Handle
}

var stoppers = []stopper{
	{"start", startGo},
	{"engine-goroutines", startEngine(func(e *Engine) { e.Flavour = FlavourGoroutines })},
	{"engine-auto", startEngine(func(*Engine) {})},
	{"engine-tls-on-goroutines", startEngine(func(e *Engine) { e.TLSOnGoroutines = true })},
}

func startGo(_ *testing.T, a, b net.Conn, afterClose func(Result)) *Handle {
	return Start(a, b, nil, afterClose)
}

// startEngine starts each pipe in an Engine of its own, set up by cfg and
// shut down at the end of the test.
func startEngine(cfg func(*Engine)) func(t *testing.T, a, b net.Conn, afterClose func(Result)) *Handle {
	return func(t *testing.T, a, b net.Conn, afterClose func(Result)) *Handle {
		t.Helper()
		e := &Engine{}
		cfg(e)
		h, err := e.Start(a, b, afterClose)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { shutdownNow(e) })
		return h
	}
}

// stopPairs are the pairs the Stop tests run: every path a pipe can take
// on each stopper (event loops for sockets and TLS on A, goroutines for
// the rest and as fallbacks).
var stopPairs = [][2]kind{
	{kTCP, kTCP}, {kUnix, kUnix}, {kTCP, kUnix}, {kTLS, kTCP}, {kTLS, kTLS}, {kTCP, kTLS},
	{kPrefix, kTCP}, {kTCP, kPrefix}, {kPrefixTLS, kTCP}, {kTLSLazy, kTCP},
	{kNetPipe, kTCP}, {kTLSPipe, kTCP}, {kTCP, kNetPipe},
}

const (
	serverHello = "* OK server ready\r\n"
	farewell    = "* BYE x\r\n"
)

// startStop runs a pipe of kinds ka, kb with s and returns its harness and
// Handle.
func startStop(t *testing.T, s stopper, ka, kb kind) (*harness, *Handle) {
	t.Helper()
	hn := &harness{ka: ka, kb: kb, res: make(chan Result, 2)}
	hn.a, hn.aPeer = side(t, ka)
	hn.b, hn.bPeer = side(t, kb)
	for _, c := range []net.Conn{hn.aPeer, hn.bPeer} {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a hung pipe fails the test
	}
	return hn, s.start(t, hn.a, hn.b, hn.afterClose)
}

// readAll reads c to its end and fails unless the end is a clean EOF (for
// TLS: close_notify).
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading to EOF: %v (got %q)", err, b)
	}
	return string(b)
}

// drainPeer reads c until it ends, whatever the end (side B's peer).
func drainPeer(c net.Conn, done chan<- string) {
	b, _ := io.ReadAll(c)
	done <- string(b)
}

// TestStopFarewell: after Stop, A's peer reads what B's peer sent, exactly
// the farewell and a clean EOF; afterClose runs once with ReasonStopped,
// Done closes after it, and later Stops do nothing.
func TestStopFarewell(t *testing.T) {
	for _, s := range stoppers {
		t.Run(s.name, func(t *testing.T) {
			for _, pr := range stopPairs {
				t.Run(pairName(pr), func(t *testing.T) { testStopFarewell(t, s, pr[0], pr[1]) })
			}
		})
	}
}

func testStopFarewell(t *testing.T, s stopper, ka, kb kind) {
	hn, h := startStop(t, s, ka, kb)
	wantBA := prefixIf(kb) + serverHello
	write(t, hn.bPeer, serverHello)
	if got := readN(t, hn.aPeer, len(wantBA)); got != wantBA {
		t.Fatalf("A read %q, want %q", got, wantBA)
	}
	write(t, hn.aPeer, "a1 NOOP\r\n")
	wantAB := prefixIf(ka) + "a1 NOOP\r\n"
	if got := readN(t, hn.bPeer, len(wantAB)); got != wantAB {
		t.Fatalf("B read %q, want %q", got, wantAB)
	}
	bDone := make(chan string, 1)
	go drainPeer(hn.bPeer, bDone)
	h.Stop([]byte(farewell))
	h.Stop([]byte("* BYE again\r\n"))
	if got := readAll(t, hn.aPeer); got != farewell {
		t.Fatalf("after Stop A read %q, want %q", got, farewell)
	}
	if got := <-bDone; got != "" {
		t.Fatalf("after Stop B read %q", got)
	}
	r := hn.wait(t)
	if r.Reason != ReasonStopped || r.FirstEnd != SideNone || r.Err != nil {
		t.Fatalf("result %+v, want stopped, first end none, no error", r)
	}
	if want := int64(len(wantBA) + len(farewell)); r.BytesBToA != want || r.BytesAToB != int64(len(wantAB)) {
		t.Fatalf("bytes a→b %d, b→a %d; want %d, %d", r.BytesAToB, r.BytesBToA, len(wantAB), want)
	}
	<-h.Done()
	h.Stop([]byte(farewell))
	if n := hn.calls.Load(); n != 1 {
		t.Fatalf("afterClose called %d times", n)
	}
}

// TestStopAfterEnd: a Stop after the pipe ended by itself changes nothing;
// one after B ended its stream (A was told EOF) closes without a farewell,
// as does Stop(nil).
func TestStopAfterEnd(t *testing.T) {
	for _, s := range stoppers {
		t.Run(s.name, func(t *testing.T) {
			for _, pr := range [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}} {
				t.Run(pairName(pr), func(t *testing.T) { testStopAfterEnd(t, s, pr[0], pr[1]) })
			}
		})
	}
}

func testStopAfterEnd(t *testing.T, s stopper, ka, kb kind) {
	t.Run("ended", func(t *testing.T) {
		hn, h := startStop(t, s, ka, kb)
		write(t, hn.bPeer, serverHello)
		closeWrite(t, hn.bPeer)
		closeWrite(t, hn.aPeer)
		if got := readAll(t, hn.aPeer); got != serverHello {
			t.Fatalf("A read %q", got)
		}
		r := hn.wait(t)
		<-h.Done()
		h.Stop([]byte(farewell))
		if r.Reason != ReasonEOF || hn.calls.Load() != 1 {
			t.Fatalf("result %+v after %d calls, want eof once", r, hn.calls.Load())
		}
	})
	t.Run("nil-farewell", func(t *testing.T) {
		hn, h := startStop(t, s, ka, kb)
		write(t, hn.bPeer, serverHello)
		readN(t, hn.aPeer, len(serverHello))
		h.Stop(nil)
		if got := readAll(t, hn.aPeer); got != "" {
			t.Fatalf("after Stop(nil) A read %q", got)
		}
		r := hn.wait(t)
		if r.Reason != ReasonStopped || r.FirstEnd != SideNone || r.BytesBToA != int64(len(serverHello)) {
			t.Fatalf("result %+v, want stopped, first end none, no farewell", r)
		}
	})
	t.Run("b-half-closed", func(t *testing.T) {
		hn, h := startStop(t, s, ka, kb)
		write(t, hn.bPeer, serverHello)
		closeWrite(t, hn.bPeer)
		if got := readAll(t, hn.aPeer); got != serverHello {
			t.Fatalf("A read %q", got)
		}
		h.Stop([]byte(farewell))
		r := hn.wait(t)
		if r.Reason != ReasonStopped || r.FirstEnd != SideB || r.BytesBToA != int64(len(serverHello)) {
			t.Fatalf("result %+v, want stopped, first end b, no farewell", r)
		}
	})
}

// TestStopConcurrent: Stops from many goroutines, while B's peer ends its
// stream, write at most one farewell and run afterClose once (-race).
func TestStopConcurrent(t *testing.T) {
	for _, s := range stoppers {
		t.Run(s.name, func(t *testing.T) {
			for _, pr := range [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}, {kNetPipe, kTCP}} {
				t.Run(pairName(pr), func(t *testing.T) { testStopConcurrent(t, s, pr[0], pr[1]) })
			}
		})
	}
}

func testStopConcurrent(t *testing.T, s stopper, ka, kb kind) {
	hn, h := startStop(t, s, ka, kb)
	write(t, hn.bPeer, serverHello)
	readN(t, hn.aPeer, len(serverHello))
	const n = 8
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Add(1)
		go stopOnSignal(h, fmt.Sprintf("* BYE %d\r\n", i), &start, &wg)
	}
	if kb.canCloseWrite() {
		wg.Add(1)
		go closeWriteOnSignal(hn.bPeer, &start, &wg)
	}
	start.Done()
	got := readAll(t, hn.aPeer)
	wg.Wait()
	r := hn.wait(t)
	// B's EOF ends a pipe whose A cannot half-close: then it may come
	// first, and no farewell follows.
	if r.Reason != ReasonStopped && (ka.canCloseWrite() || r.Reason != ReasonEOF || got != "") {
		t.Fatalf("result %+v, A read %q; want stopped", r, got)
	}
	if got != "" && (!strings.HasPrefix(got, "* BYE ") || len(got) != len("* BYE 0\r\n")) {
		t.Fatalf("A read %q, want at most one farewell", got)
	}
	if r.BytesBToA != int64(len(serverHello)+len(got)) {
		t.Fatalf("%d bytes b→a, A read %d after %d", r.BytesBToA, len(got), len(serverHello))
	}
	<-h.Done()
	if c := hn.calls.Load(); c != 1 {
		t.Fatalf("afterClose called %d times", c)
	}
}

func stopOnSignal(h *Handle, farewell string, start, wg *sync.WaitGroup) {
	defer wg.Done()
	start.Wait()
	h.Stop([]byte(farewell))
}

func closeWriteOnSignal(c net.Conn, start, wg *sync.WaitGroup) {
	defer wg.Done()
	start.Wait()
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
}

// TestStopAndShutdown: Engine.Shutdown ends pipes whose Handles are held,
// stopped or not, on loops and goroutines; Stops after it do nothing and
// no descriptor or goroutine is left.
func TestStopAndShutdown(t *testing.T) {
	forEngineModes(t, testStopAndShutdown)
}

func testStopAndShutdown(t *testing.T, f Flavour) {
	side(t, kTCP) // the poller's own fds exist before counting
	before, _ := openFDs(t)
	ignore := goleak.IgnoreCurrent()
	t.Run("work", func(t *testing.T) {
		e := &Engine{Flavour: f}
		kinds := [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}, {kNetPipe, kTCP}, {kUnix, kUnix}}
		var calls atomic.Int32
		results := make(chan Result, 2*len(kinds))
		handles := make([]*Handle, 0, 2*len(kinds))
		for i := range 2 * len(kinds) {
			pr := kinds[i%len(kinds)]
			a, ap := side(t, pr[0])
			b, bp := side(t, pr[1])
			h, err := e.Start(a, b, func(r Result) { calls.Add(1); results <- r })
			if err != nil {
				t.Fatal(err)
			}
			write(t, bp, "x")
			readN(t, ap, 1)
			handles = append(handles, h)
		}
		for _, h := range handles[:len(kinds)] {
			h.Stop([]byte(farewell))
		}
		if err := shutdownNow(e); !errors.Is(err, context.Canceled) {
			t.Fatalf("Shutdown: %v", err)
		}
		stopped, shut := 0, 0
		for range handles {
			switch r := <-results; r.Reason {
			case ReasonStopped:
				stopped++
			case ReasonShutdown:
				shut++
			default:
				t.Errorf("result %+v", r)
			}
		}
		for _, h := range handles {
			<-h.Done()
			h.Stop(nil)
		}
		// A Stop before Shutdown's deadline wins, even though Shutdown
		// cuts its flush short.
		if stopped != len(kinds) || shut != len(kinds) || calls.Load() != int32(len(handles)) {
			t.Fatalf("%d stopped, %d shut down, %d calls, of %d", stopped, shut, calls.Load(), len(handles))
		}
		a, _ := side(t, kTCP)
		b, _ := side(t, kTCP)
		if h, err := e.Start(a, b, nil); h != nil || !errors.Is(err, ErrShuttingDown) {
			t.Fatalf("Start after Shutdown: %v, %v", h, err)
		}
	})
	if after, _ := openFDs(t); after != before {
		t.Fatalf("%d fds open after, %d before", after, before)
	}
	goleak.VerifyNone(t, ignore)
}

// TestStopOnLoops: Engine.Start puts socket and TLS 1.3 pairs on the event
// loops (so TestStopFarewell's engine-auto cases test the loops), and a TLS
// client reads the farewell the loops sealed.
func TestStopOnLoops(t *testing.T) {
	if !tlsrec.Supported {
		t.Skip("TLS pairs do not go to the loops with this Go release")
	}
	e := &Engine{}
	defer shutdownNow(e)
	for _, pr := range [][2]kind{{kTCP, kTCP}, {kUnix, kUnix}, {kTLS, kTCP}, {kPrefix, kTCP}} {
		hn := &harness{ka: pr[0], kb: pr[1], res: make(chan Result, 1)}
		hn.a, hn.aPeer = side(t, pr[0])
		hn.b, hn.bPeer = side(t, pr[1])
		h, err := e.Start(hn.a, hn.b, hn.afterClose)
		if err != nil {
			t.Fatal(err)
		}
		if s := e.Stats(); s.OnLoops != 1 {
			t.Fatalf("%s: %d pairs on the loops, want 1", pairName(pr), s.OnLoops)
		}
		write(t, hn.bPeer, serverHello)
		readN(t, hn.aPeer, len(serverHello))
		h.Stop([]byte(farewell))
		if got := readAll(t, hn.aPeer); got != farewell {
			t.Fatalf("%s: A read %q", pairName(pr), got)
		}
		hn.wait(t)
		<-h.Done()
	}
}

// TestStopFlushesPending: Stop while B→A is backed up (A's peer not
// reading): A's peer then reads an unbroken prefix of B's stream, exactly
// as many bytes as the Result counts, then the farewell.
func TestStopFlushesPending(t *testing.T) {
	for _, s := range stoppers {
		t.Run(s.name, func(t *testing.T) {
			for _, pr := range [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}, {kTCP, kTLS}} {
				t.Run(pairName(pr), func(t *testing.T) { testStopFlushesPending(t, s, pr[0], pr[1]) })
			}
		})
	}
}

func testStopFlushesPending(t *testing.T, s stopper, ka, kb kind) {
	hn, h := startStop(t, s, ka, kb)
	wrote := make(chan int64, 1)
	go writePattern(hn.bPeer, 8<<20, wrote)
	readN(t, hn.aPeer, 1) // bytes flow; most of the stream is still to come
	h.Stop([]byte(farewell))
	got := readAll(t, hn.aPeer)
	<-wrote
	r := hn.wait(t)
	if r.Reason != ReasonStopped || r.BytesBToA != int64(1+len(got)) {
		t.Fatalf("result %+v; A read 1+%d bytes", r, len(got))
	}
	if !strings.HasSuffix(got, farewell) {
		t.Fatalf("A's last bytes %q, want the farewell", got[max(0, len(got)-32):])
	}
	body := got[:len(got)-len(farewell)]
	for i := range len(body) {
		if body[i] != patternByte(i+1) {
			t.Fatalf("byte %d of B's stream is %d, want %d", i+1, body[i], patternByte(i+1))
		}
	}
}

func patternByte(i int) byte { return byte(i % 251) }

// writePattern writes up to n bytes of the pattern to c until a write
// fails, and sends how many it wrote.
func writePattern(c net.Conn, n int, wrote chan<- int64) {
	buf := make([]byte, 64<<10)
	var off int
	for off < n {
		for i := range buf {
			buf[i] = patternByte(off + i)
		}
		m, err := c.Write(buf)
		off += m
		if err != nil {
			break
		}
	}
	wrote <- int64(off)
}
