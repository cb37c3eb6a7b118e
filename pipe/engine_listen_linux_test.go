package pipe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/internal/procfs"
	"github.com/pipegate/pipegate/internal/testserver"
)

// listenFixture is an Engine listening with Engine.Listen, whose Setups
// come from setup, and the results its pipes ended with.
type listenFixture struct {
	e       *Engine
	ln      *Listener
	results chan Result
}

func startListen(t *testing.T, setup func(*Accepted) *Setup) *listenFixture {
	t.Helper()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &listenFixture{e: &Engine{}, results: make(chan Result, 16)}
	f.ln, err = f.e.Listen(tl, Acceptor{Accept: func(a *Accepted) *Setup {
		s := setup(a)
		if s != nil && s.AfterClose == nil {
			s.AfterClose = func(r Result) { f.results <- r }
		}
		return s
	}})
	if err != nil {
		tl.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.e.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return f
}

func (f *listenFixture) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", f.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func (f *listenFixture) result(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-f.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no AfterClose within 10s")
		return Result{}
	}
}

// addresses returns a Setup.Next that gives addrs in turn and records the
// errors it is told about.
func addresses(errs *[]error, addrs ...netip.AddrPort) func(error) (netip.AddrPort, bool) {
	i := 0
	return func(prev error) (netip.AddrPort, bool) {
		if prev != nil {
			*errs = append(*errs, prev)
		}
		if i == len(addrs) {
			return netip.AddrPort{}, false
		}
		i++
		return addrs[i-1], true
	}
}

func echoUpstream(t *testing.T) netip.AddrPort {
	return netip.MustParseAddrPort(testserver.Start(t, nil, 10*time.Second, testserver.Echo))
}

// refusedAddr is a loopback port nobody listens on.
func refusedAddr(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != msg {
		t.Fatalf("echo: got %q, %v; want %q", got, err, msg)
	}
}

func TestListenPipes(t *testing.T) {
	up := echoUpstream(t)
	var errs []error
	var connected int
	var peer netip.AddrPort
	nodelay := -1
	f := startListen(t, func(a *Accepted) *Setup {
		peer = a.Peer
		// Set once on the listener, inherited by every accepted socket.
		nodelay, _ = unix.GetsockoptInt(a.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		return &Setup{Next: addresses(&errs, up), Connected: func() { connected++ }}
	})
	c := f.dial(t)
	roundTrip(t, c, "hello through the loops")
	r := f.result(t)
	if r.Reason != ReasonEOF || r.BytesAToB != 23 || r.BytesBToA != 23 || r.Err != nil {
		t.Fatalf("result %+v", r)
	}
	if peer.String() != c.LocalAddr().String() || connected != 1 || len(errs) != 0 || nodelay != 1 {
		t.Fatalf("peer %v (client %v), connected %d, errs %v, TCP_NODELAY %d", peer, c.LocalAddr(), connected, errs, nodelay)
	}
	// Counted out once AfterClose has returned, maybe after its result
	// arrived here.
	spinUntil(t, "the pair counted out", func() bool { return f.e.Stats().Open == 0 })
	if s := f.e.Stats(); s.Total != 1 || s.BytesAToB != 23 {
		t.Fatalf("stats %+v", s)
	}
}

func TestListenFailsOver(t *testing.T) {
	up := echoUpstream(t)
	var errs []error
	f := startListen(t, func(*Accepted) *Setup {
		return &Setup{Next: addresses(&errs, refusedAddr(t), up), Prefix: []byte("PREFIX ")}
	})
	c := f.dial(t)
	io.WriteString(c, "data")
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); string(got) != "PREFIX data" {
		t.Fatalf("echo: got %q, %v; want the prefix, then the client's bytes", got, err)
	}
	r := f.result(t)
	if r.Reason != ReasonEOF || r.BytesAToB != 11 || r.BytesBToA != 11 {
		t.Fatalf("result %+v", r)
	}
	if len(errs) != 1 || !errors.Is(errs[0], syscall.ECONNREFUSED) {
		t.Fatalf("errors told to Next: %v", errs)
	}
}

func TestListenNoUpstreamLeft(t *testing.T) {
	var errs []error
	f := startListen(t, func(*Accepted) *Setup {
		return &Setup{Next: addresses(&errs, refusedAddr(t), refusedAddr(t))}
	})
	c := f.dial(t)
	if b, err := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("client read %q, %v", b, err)
	}
	r := f.result(t)
	if r.Reason != ReasonError || r.FirstEnd != SideB || !errors.Is(r.Err, syscall.ECONNREFUSED) {
		t.Fatalf("result %+v", r)
	}
	if len(errs) != 2 {
		t.Fatalf("errors told to Next: %v", errs)
	}
}

// TestListenDialTimeout connects to a listener whose accept queue is full:
// the kernel drops the SYNs, and DialTimeout moves on to the next address.
func TestListenDialTimeout(t *testing.T) {
	full := testserver.FullListener(t)
	up := echoUpstream(t)
	var errs []error
	f := startListen(t, func(*Accepted) *Setup {
		return &Setup{Next: addresses(&errs, full, up), DialTimeout: 200 * time.Millisecond}
	})
	roundTrip(t, f.dial(t), "late")
	if r := f.result(t); r.Reason != ReasonEOF || r.BytesBToA != 4 {
		t.Fatalf("result %+v", r)
	}
	if len(errs) != 1 || !errors.Is(errs[0], syscall.ETIMEDOUT) {
		t.Fatalf("errors told to Next: %v", errs)
	}
}

func TestListenRefuseAndTake(t *testing.T) {
	var mu sync.Mutex
	var taken []net.Conn
	var n atomic.Int32 // the loops may run Accept on two threads
	f := startListen(t, func(a *Accepted) *Setup {
		if n.Add(1) == 1 {
			return nil // refused: the Engine closes it
		}
		c, err := a.Conn()
		if err != nil {
			t.Error(err)
			return nil
		}
		mu.Lock()
		taken = append(taken, c)
		mu.Unlock()
		go func() { io.WriteString(c, "from Go"); c.Close() }()
		return nil
	})
	if b, _ := io.ReadAll(f.dial(t)); len(b) != 0 {
		t.Fatalf("refused client read %q", b)
	}
	if b, err := io.ReadAll(f.dial(t)); string(b) != "from Go" {
		t.Fatalf("taken conn: read %q, %v", b, err)
	}
	// The loop counts a connection out once Accept has returned.
	spinUntil(t, "refused and taken connections are counted out", func() bool {
		s := f.e.Stats()
		return s.Total == 0 && s.Open == 0
	})
}

func TestListenShutdownStopsAccepting(t *testing.T) {
	up := echoUpstream(t)
	var errs []error
	f := startListen(t, func(*Accepted) *Setup { return &Setup{Next: addresses(&errs, up)} })
	c := f.dial(t)
	io.WriteString(c, "x")
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil { // piped and running
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.e.Shutdown(ctx) }()
	spinUntilDialFails(t, f.ln.Addr().String())
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	cancel()
	if r := f.result(t); r.Reason != ReasonEOF {
		t.Fatalf("result %+v", r)
	}
}

// spinUntilDialFails waits until addr refuses connections.
func spinUntilDialFails(t *testing.T, addr string) {
	t.Helper()
	spinUntil(t, "the listener refuses connections", func() bool {
		c, err := net.Dial("tcp", addr)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return true
		case errors.Is(err, syscall.ECONNRESET):
			return false // queued while the listener closed
		case err != nil:
			t.Fatalf("dial: %v", err)
		}
		c.Close()
		return false
	})
}

func TestListenUnsupported(t *testing.T) {
	ul, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	var e Engine
	if _, err := e.Listen(ul, Acceptor{Accept: func(*Accepted) *Setup { return nil }}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Listen on a unix listener: %v", err)
	}
	ul.(*net.UnixListener).SetDeadline(time.Now()) // still open: Accept times out
	if _, err := ul.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("unix listener after a refused Listen: Accept: %v", err)
	}
}

// TestListenPausesOnEMFILE: out of descriptors, a loop tells the Acceptor,
// pauses accepting on the listener, and takes the waiting connection once
// descriptors are free again.
//
// The limit is process-wide and any descriptor another goroutine frees would
// let an accept through, so the test runs alone in a child process.
func TestListenPausesOnEMFILE(t *testing.T) {
	if os.Getenv(emfileChildEnv) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestListenPausesOnEMFILE$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestListenPausesOnEMFILE") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	up := echoUpstream(t)
	var errs []error
	paused := make(chan error, 64)
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Loops: 4}
	results := make(chan Result, 4)
	ln, err := e.Listen(tl, Acceptor{
		Accept: func(*Accepted) *Setup {
			return &Setup{Next: addresses(&errs, up), AfterClose: func(r Result) { results <- r }}
		},
		Error: func(err error, retryIn time.Duration) {
			if retryIn <= 0 {
				t.Errorf("retryIn %v", retryIn)
			}
			paused <- err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdownWithin(t, e, 10*time.Second)
	// The client's socket exists before the limit drops to what is open.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A second client, so that more than one loop may hit the limit.
	fd2, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd2)
	client := os.NewFile(uintptr(fd), "client")
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// The limit is on descriptor numbers, and new descriptors take the
	// lowest free number: with the limit just above the highest open one and
	// every lower number taken (by fillers), none can be made.
	runtime.GC() // finalizers close what earlier tests left to the collector
	runtime.GC()
	low := old
	low.Cur = uint64(maxFD(t) + 1)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var fillers []int
	defer func() {
		for _, f := range fillers {
			unix.Close(f)
		}
	}()
	for {
		f, err := unix.Dup(fd)
		if err != nil {
			break
		}
		fillers = append(fillers, f)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	ap := netip.MustParseAddrPort(ln.Addr().String())
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd2, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a pause per client: on two loops, or twice on one
		select {
		case err := <-paused:
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("accept error %v, want EMFILE", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no accept error with no descriptor left")
		}
	}
	restore()
	c, err := net.FileConn(client) // a duplicate: close both
	client.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	roundTrip(t, c, "after the pause")
	select {
	case r := <-results:
		if r.Reason != ReasonEOF || r.BytesAToB != 15 {
			t.Fatalf("result %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no AfterClose")
	}
}

// maxFD returns the highest descriptor number open in this process.
func maxFD(t *testing.T) int {
	t.Helper()
	fds, err := procfs.FDTargets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	m := 0
	for n := range fds {
		m = max(m, n)
	}
	return m
}

// emfileChildEnv marks the child process of TestListenPausesOnEMFILE.
const emfileChildEnv = "PIPE_TEST_EMFILE_CHILD"

func shutdownWithin(t *testing.T, e *Engine, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// IPv6 on both sides: the peer address accept4 gives, and an AF_INET6
// upstream socket.
func TestListenIPv6(t *testing.T) {
	upl, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	testserver.Serve(t, upl, 10*time.Second, testserver.Echo)
	up := netip.MustParseAddrPort(upl.Addr().String())
	tl, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	var e Engine
	defer shutdownWithin(t, &e, 10*time.Second)
	var errs []error
	var peer netip.AddrPort
	results := make(chan Result, 1)
	ln, err := e.Listen(tl, Acceptor{Accept: func(a *Accepted) *Setup {
		peer = a.Peer
		return &Setup{Next: addresses(&errs, up), AfterClose: func(r Result) { results <- r }}
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	roundTrip(t, c, "over v6")
	if r := <-results; r.Reason != ReasonEOF || r.BytesBToA != 7 || len(errs) != 0 {
		t.Fatalf("result %+v, errs %v", r, errs)
	}
	if peer.String() != c.LocalAddr().String() {
		t.Fatalf("peer %v, client %v", peer, c.LocalAddr())
	}
}

// TestHandles: Engine.Handles lists the pipes a Listener accepted and
// those Start entered, and stopping each through it ends them as stopped.
func TestHandles(t *testing.T) {
	up := echoUpstream(t)
	f := startListen(t, func(a *Accepted) *Setup {
		return &Setup{Next: addresses(new([]error), up)}
	})
	c := f.dial(t)
	echo := func(c net.Conn) {
		t.Helper()
		buf := []byte("x")
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	echo(c) // the accepted pair is piping
	a, aPeer := socketPair(t, "tcp")
	b, bPeer := net.Pipe()
	defer aPeer.Close()
	defer bPeer.Close()
	if _, err := f.e.Start(a, b, func(r Result) { f.results <- r }); err != nil {
		t.Fatal(err)
	}
	hs := f.e.Handles()
	if len(hs) != 2 {
		t.Fatalf("Handles: %d, want 2", len(hs))
	}
	for _, h := range hs {
		h.Stop(nil)
	}
	for range 2 {
		if r := f.result(t); r.Reason != ReasonStopped {
			t.Fatalf("reason %v, want stopped", r.Reason)
		}
	}
	for _, h := range hs {
		<-h.Done() // closed once the pipe has left the engine
	}
	if hs := f.e.Handles(); len(hs) != 0 {
		t.Fatalf("Handles after the pipes ended: %d", len(hs))
	}
}
