package pipe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pipegate/internal/testserver"
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
	f := startListen(t, func(a *Accepted) *Setup {
		peer = a.Peer
		return &Setup{Next: addresses(&errs, up), Connected: func() { connected++ }}
	})
	c := f.dial(t)
	roundTrip(t, c, "hello through the loops")
	r := f.result(t)
	if r.Reason != ReasonEOF || r.BytesAToB != 23 || r.BytesBToA != 23 || r.Err != nil {
		t.Fatalf("result %+v", r)
	}
	if peer.String() != c.LocalAddr().String() || connected != 1 || len(errs) != 0 {
		t.Fatalf("peer %v (client %v), connected %d, errs %v", peer, c.LocalAddr(), connected, errs)
	}
	if s := f.e.Stats(); s.Total != 1 || s.Open != 0 || s.BytesAToB != 23 {
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
	full := fullListener(t)
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

// fullListener returns the address of a socket listening with a backlog of
// 0 whose queue holds connections nobody accepts.
func fullListener(t *testing.T) netip.AddrPort {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	for i := 0; ; i++ { // fill the queue until a connect does not complete
		d := net.Dialer{Timeout: 100 * time.Millisecond}
		c, err := d.Dial("tcp", ap.String())
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
		if i > 8 {
			t.Fatal("the accept queue never filled")
		}
	}
	return ap
}

func TestListenRefuseAndTake(t *testing.T) {
	var mu sync.Mutex
	var taken []net.Conn
	n := 0
	f := startListen(t, func(a *Accepted) *Setup {
		n++
		if n == 1 {
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
	if s := f.e.Stats(); s.Total != 0 || s.Open != 0 {
		t.Fatalf("stats %+v: refused and taken connections are no pipes", s)
	}
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
