package pipe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// streamByte is byte i of the test streams: not periodic, so that a lost,
// repeated or reordered block shows.
func streamByte(seed, i uint64) byte {
	x := seed ^ (i/8)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return byte(x >> (8 * (i % 8)))
}

// sendChecked writes n bytes of stream seed to c in chunks, then ends its
// write half (close_notify for TLS), and reports the first error.
func sendChecked(c net.Conn, seed uint64, n int, errc chan<- error) {
	buf := make([]byte, 8<<10)
	for off := 0; off < n; {
		m := min(len(buf), n-off)
		for i := range m {
			buf[i] = streamByte(seed, uint64(off+i))
		}
		if _, err := c.Write(buf[:m]); err != nil {
			errc <- fmt.Errorf("write at %d: %w", off, err)
			return
		}
		off += m
	}
	errc <- c.(interface{ CloseWrite() error }).CloseWrite()
}

// checkChecked reads c to its end and checks that it is exactly n bytes of
// stream seed. It reads no further than g allows, so that the writer
// backs up and bytes wait in the pipe: the hand-over must carry them.
func checkChecked(c net.Conn, seed uint64, n int, g *gate, errc chan<- error) {
	defer g.end()
	buf := make([]byte, 8<<10)
	off := 0
	for {
		m, err := c.Read(buf[:g.room(off, len(buf))])
		for i := range m {
			if want := streamByte(seed, uint64(off+i)); buf[i] != want {
				errc <- fmt.Errorf("byte %d is %#x, want %#x", off+i, buf[i], want)
				return
			}
		}
		off += m
		g.reached(off)
		if err == io.EOF {
			break
		}
		if err != nil {
			errc <- fmt.Errorf("read at %d: %w", off, err)
			return
		}
	}
	if off != n {
		errc <- fmt.Errorf("read %d bytes, want %d", off, n)
		return
	}
	errc <- nil
}

// gate holds a reader at a limit until the test raises it.
type gate struct {
	mu    sync.Mutex
	cond  *sync.Cond
	limit int  // the reader reads no further
	got   int  // bytes read so far
	ended bool // the reader returned
}

func (g *gate) end() {
	g.mu.Lock()
	g.ended = true
	g.mu.Unlock()
	g.cond.Broadcast()
}

func newGate(limit int) *gate {
	g := &gate{limit: limit}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// room waits until the reader at off may read, and returns how much.
func (g *gate) room(off, max int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.limit <= off {
		g.cond.Wait()
	}
	return min(max, g.limit-off)
}

func (g *gate) reached(off int) {
	g.mu.Lock()
	g.got = off
	g.mu.Unlock()
	g.cond.Broadcast()
}

// waitAt waits until the reader has read up to the limit; false if it
// returned before.
func (g *gate) waitAt() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.got < g.limit && !g.ended {
		g.cond.Wait()
	}
	return !g.ended
}

func (g *gate) raise(limit int) {
	g.mu.Lock()
	g.limit = limit
	g.mu.Unlock()
	g.cond.Broadcast()
}

// smallSide is side for kinds tcp, tls and prefix, over TCP sockets whose
// buffers are small from the start (set before connecting: shrinking
// them later stalls TCP), so that a stream soon backs up into the pipe.
func smallSide(t *testing.T, k kind) (inner, peer net.Conn) {
	t.Helper()
	small := func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			for _, opt := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 16<<10); err != nil {
					serr = err
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	lc := net.ListenConfig{Control: small}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan accepted, 1)
	go acceptOne(ln, ch)
	d := net.Dialer{Control: small}
	peer, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	inner = r.c
	switch k {
	case kTCP:
	case kPrefix:
		write(t, peer, prefixGreeting)
		readN(t, inner, len(prefixGreeting))
		inner = WithPrefix(inner, []byte(prefixGreeting))
	case kTLS:
		srv := tls.Server(inner, serverTLS(t))
		cli := tls.Client(peer, clientTLS(t))
		errc := make(chan error, 1)
		go handshake(srv, errc)
		if err := cli.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		inner, peer = srv, cli
	default:
		t.Fatalf("smallSide: kind %s", k)
	}
	t.Cleanup(func() { inner.Close(); peer.Close() })
	return inner, peer
}

// resultOnce collects a pipe's afterClose calls, wherever they come from.
type resultOnce struct {
	calls atomic.Int32
	res   chan Result
}

func newResultOnce() *resultOnce { return &resultOnce{res: make(chan Result, 2)} }

func (r *resultOnce) afterClose(res Result) {
	r.calls.Add(1)
	r.res <- res
}

// startTCP starts a pipe on e between two TCP sockets and returns its
// Handle, the peers of its A and B sides, and its result.
func startTCP(t *testing.T, e *Engine) (*Handle, net.Conn, net.Conn, *resultOnce) {
	t.Helper()
	a, aPeer := side(t, kTCP)
	b, bPeer := side(t, kTCP)
	ro := newResultOnce()
	h, err := e.Start(a, b, ro.afterClose)
	if err != nil {
		t.Fatal(err)
	}
	return h, aPeer, bPeer, ro
}

func (r *resultOnce) wait(t *testing.T) Result {
	t.Helper()
	select {
	case res := <-r.res:
		if n := r.calls.Load(); n != 1 {
			t.Fatalf("afterClose called %d times", n)
		}
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("pipe did not end")
	}
	return Result{}
}

// hop detaches h and adopts the pipe on to, through the State's bytes as
// another process would get them.
func hop(t *testing.T, h *Handle, to *Engine, afterClose func(Result)) *Handle {
	t.Helper()
	d, err := h.Detach(context.Background())
	if err != nil {
		t.Fatalf("detach: %v", err)
	}
	select {
	case <-h.Done():
	default:
		t.Fatal("Done not closed after Detach")
	}
	h2, err := to.Adopt(d, afterClose)
	if err != nil {
		t.Fatalf("adopt: %v", err)
	}
	return h2
}

// TestDetachAdoptStream: a checksummed stream runs both ways while the
// pipe hops between two Engines several times, mid-transfer; no byte is
// lost, repeated or reordered, TLS peers (real crypto/tls) notice
// nothing, and afterClose runs once, on the last Engine, with the totals
// of every hop.
func TestDetachAdoptStream(t *testing.T) {
	if !tlsrec.Supported {
		t.Skip("TLS pairs do not go to the loops with this Go release")
	}
	for _, pr := range [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}, {kTCP, kTLS}, {kTLS, kTLS}, {kPrefix, kTCP}} {
		t.Run(pairName(pr), func(t *testing.T) { testDetachAdoptStream(t, pr[0], pr[1], FlavourAuto) })
		if pr[0] != kTLS && pr[1] != kTLS {
			// From goroutines to the loops (and back to the loops of the
			// first Engine: Adopt always uses the loops).
			t.Run(pairName(pr)+"-goroutines", func(t *testing.T) { testDetachAdoptStream(t, pr[0], pr[1], FlavourGoroutines) })
		}
	}
}

func testDetachAdoptStream(t *testing.T, ka, kb kind, fl Flavour) {
	const n = 3 << 20
	engines := [2]*Engine{{Flavour: fl}, {}}
	defer shutdownNow(engines[0])
	defer shutdownNow(engines[1])
	a, aPeer := smallSide(t, ka)
	b, bPeer := smallSide(t, kb)
	for _, c := range []net.Conn{aPeer, bPeer} {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	ro := newResultOnce()
	h, err := engines[0].Start(a, b, ro.afterClose)
	if err != nil {
		t.Fatal(err)
	}
	if s := engines[0].Stats(); s.OnLoops != 1 && fl == FlavourAuto {
		t.Fatalf("pair not on the loops: %+v", s)
	}
	skipAB := 0
	if ka.hasPrefix() {
		skipAB = len(prefixGreeting)
		readN(t, bPeer, skipAB) // the prefix comes first
	}
	errc := make(chan error, 4)
	const hops = 6
	step := n / (hops + 1)
	gAB, gBA := newGate(step), newGate(step)
	go sendChecked(aPeer, 1, n, errc)
	go sendChecked(bPeer, 2, n, errc)
	go checkChecked(bPeer, 1, n, gAB, errc)
	go checkChecked(aPeer, 2, n, gBA, errc)
	for i := 1; i <= hops; i++ {
		// Both readers stop at the limit: the writers back up, and the
		// pipe holds bytes read and not yet written when it leaves.
		if !gAB.waitAt() || !gBA.waitAt() {
			t.Fatalf("before hop %d: %v", i, <-errc)
		}
		select {
		case r := <-ro.res:
			t.Fatalf("pipe ended before hop %d: %+v", i, r)
		default:
		}
		limit := (i + 1) * step
		if i == hops {
			limit = 2 * n
		}
		if i == 1 && fl == FlavourGoroutines {
			// On goroutines a direction stops only once its peer took what
			// it read: let the readers go on meanwhile.
			gAB.raise(limit)
			gBA.raise(limit)
		}
		h = hop(t, h, engines[i%2], ro.afterClose)
		gAB.raise(limit)
		gBA.raise(limit)
	}
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	r := ro.wait(t)
	if r.Reason != ReasonEOF || r.BytesAToB != int64(n+skipAB) || r.BytesBToA != n {
		t.Fatalf("result %+v, want EOF with %d and %d bytes", r, n+skipAB, n)
	}
	for i, e := range engines {
		want := int64(hops / 2)
		if i == 0 {
			want++ // Start
		}
		// The last engine counts the pipe out once its afterClose has
		// returned, maybe after the result arrived here.
		spinUntil(t, "the pipe counted out", func() bool { s := e.Stats(); return s.Open == 0 && s.OnLoops == 0 })
		if s := e.Stats(); s.Total != want {
			t.Fatalf("engine %d stats %+v, want %d pipes in all", i, s, want)
		}
	}
}

// TestDetachAdoptIdle: idle pairs of each kind leave and go on; their
// Result keeps the original start; timers go on from where they were.
func TestDetachAdoptIdle(t *testing.T) {
	if !tlsrec.Supported {
		t.Skip("TLS pairs do not go to the loops with this Go release")
	}
	e1 := &Engine{Options: Options{MaxLifetime: time.Hour}}
	e2 := &Engine{}
	defer shutdownNow(e1)
	defer shutdownNow(e2)
	for _, pr := range [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}, {kTCP, kTLS}, {kTLS, kTLS}} {
		a, aPeer := side(t, pr[0])
		b, bPeer := side(t, pr[1])
		ro := newResultOnce()
		h, err := e1.Start(a, b, ro.afterClose)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		write(t, aPeer, "before")
		readN(t, bPeer, 6)
		h = hop(t, h, e2, ro.afterClose)
		write(t, aPeer, "after")
		readN(t, bPeer, 5)
		write(t, bPeer, "back")
		readN(t, aPeer, 4)
		h.Stop([]byte("bye"))
		if got := readAll(t, aPeer); got != "bye" {
			t.Fatalf("%s: A read %q after Stop", pairName(pr), got)
		}
		r := ro.wait(t)
		if r.BytesAToB != 11 || r.BytesBToA != 7 || r.Reason != ReasonStopped || r.Start.After(start) {
			t.Fatalf("%s: result %+v", pairName(pr), r)
		}
	}
}

// TestAdoptTimers: the pipe keeps its own Options across the hand-over
// (the adopting Engine's do not apply) and its timers go on: an
// IdleTimeout of the first Engine ends it on the second.
func TestAdoptTimers(t *testing.T) {
	const idle = 200 * time.Millisecond
	e1 := &Engine{Options: Options{IdleTimeout: idle}}
	e2 := &Engine{Options: Options{IdleTimeout: time.Hour}}
	defer shutdownNow(e1)
	defer shutdownNow(e2)
	a, _ := side(t, kTCP)
	b, _ := side(t, kTCP)
	ro := newResultOnce()
	h, err := e1.Start(a, b, ro.afterClose)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d, err := h.Detach(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := decodeState(d.State)
	if err != nil {
		t.Fatal(err)
	}
	if s.Opts.IdleTimeout != idle || s.Idle < 0 || s.Idle > s.Age || s.Linger != -1 || s.Start.After(start) {
		t.Fatalf("snapshot %+v", s)
	}
	wipeSnapshot(s)
	if _, err := e2.Adopt(d, ro.afterClose); err != nil {
		t.Fatal(err)
	}
	if r := ro.wait(t); r.Reason != ReasonIdleTimeout || r.Start.After(start) {
		t.Fatalf("result %+v, want idle timeout", r)
	}
}

// TestDetachExpiredContext: Detach with a done context leaves the pipe
// running, on its Engine.
func TestDetachExpiredContext(t *testing.T) {
	e := &Engine{}
	defer shutdownNow(e)
	h, aPeer, bPeer, ro := startTCP(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := h.Detach(ctx); !errors.Is(err, context.Canceled) || d != nil {
		t.Fatalf("Detach with a cancelled context: %v, %v", d, err)
	}
	write(t, aPeer, "still")
	readN(t, bPeer, 5)
	closeWrite(t, aPeer)
	closeWrite(t, bPeer)
	if r := ro.wait(t); r.Reason != ReasonEOF || r.BytesAToB != 5 {
		t.Fatalf("result %+v", r)
	}
}

// TestDetachGoroutinePipe: a plain pipe on goroutines leaves at a clean
// point and goes on on the loops; a TLS one cannot leave and goes on.
func TestDetachGoroutinePipe(t *testing.T) {
	e := &Engine{Flavour: FlavourGoroutines}
	e2 := &Engine{}
	defer shutdownNow(e)
	defer shutdownNow(e2)
	for _, k := range []kind{kTCP, kUnix, kPrefix} {
		a, aPeer := side(t, k)
		b, bPeer := side(t, kTCP)
		ro := newResultOnce()
		h, err := e.Start(a, b, ro.afterClose)
		if err != nil {
			t.Fatal(err)
		}
		skip := 0
		if k.hasPrefix() {
			skip = len(prefixGreeting)
			readN(t, bPeer, skip)
		}
		write(t, aPeer, "one")
		readN(t, bPeer, 3)
		h2 := hop(t, h, e2, ro.afterClose)
		write(t, aPeer, "two")
		readN(t, bPeer, 3)
		write(t, bPeer, "back")
		readN(t, aPeer, 4)
		h2.Stop(nil)
		r := ro.wait(t)
		if r.BytesAToB != int64(6+skip) || r.BytesBToA != 4 || r.Reason != ReasonStopped {
			t.Fatalf("%s: result %+v", k, r)
		}
	}
	if s := e.Stats(); s.Open != 0 {
		t.Fatalf("goroutine engine still counts %d pipes", s.Open)
	}

	a, aPeer := side(t, kTLS)
	b, bPeer := side(t, kTCP)
	ro := newResultOnce()
	h, err := e.Start(a, b, ro.afterClose)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Detach(context.Background()); !errors.Is(err, ErrNotDetachable) {
		t.Fatalf("Detach of a TLS pipe on goroutines: %v", err)
	}
	left, err := e.DetachAll(context.Background(), func(*Detached) error {
		t.Error("yield called for a TLS pipe on goroutines")
		return nil
	})
	if left != 1 || err != nil {
		t.Fatalf("DetachAll: %d left, %v", left, err)
	}
	write(t, aPeer, "still")
	readN(t, bPeer, 5)
	aPeer.Close()
	bPeer.Close()
	ro.wait(t)
}

// TestDetachGoroutineBusy: a pipe on goroutines whose peer does not take
// what it read cannot stop at a clean point; Detach gives up when ctx
// ends and the stream goes on intact.
func TestDetachGoroutineBusy(t *testing.T) {
	const n = 2 << 20
	e := &Engine{Flavour: FlavourGoroutines}
	defer shutdownNow(e)
	a, aPeer := smallSide(t, kTCP)
	b, bPeer := smallSide(t, kTCP)
	ro := newResultOnce()
	h, err := e.Start(a, b, ro.afterClose)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 4)
	gAB, gBA := newGate(n/4), newGate(n/4)
	go sendChecked(aPeer, 1, n, errc)
	go sendChecked(bPeer, 2, n, errc)
	go checkChecked(bPeer, 1, n, gAB, errc)
	go checkChecked(aPeer, 2, n, gBA, errc)
	if !gAB.waitAt() || !gBA.waitAt() {
		t.Fatal(<-errc)
	}
	// Both readers hold: the directions get stuck writing once the
	// kernel's buffers are full. Detach gives up when ctx ends; should it
	// find a clean point first (a write that had just drained: the test
	// cannot know when the buffers are full), the pipe is carried on here.
	// Either way the streams must go on intact.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	switch d, err := h.Detach(ctx); {
	case errors.Is(err, context.DeadlineExceeded) && d == nil:
	case err == nil && d != nil:
		t.Log("Detach found a clean point before ctx ended; adopting it again")
		if _, err := e.Adopt(d, ro.afterClose); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("Detach of a busy pipe: %v, %v", d, err)
	}
	gAB.raise(2 * n)
	gBA.raise(2 * n)
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if r := ro.wait(t); r.Reason != ReasonEOF || r.BytesAToB != n || r.BytesBToA != n {
		t.Fatalf("result %+v", r)
	}
}

// TestDetachAllYieldFails: DetachAll sends some pipes (adopted on a second
// Engine), then yield fails: that pipe and the rest stay, working, on the
// first Engine; every afterClose runs once, on the Engine that has the
// pipe, and no descriptor leaks.
func TestDetachAllYieldFails(t *testing.T) {
	if !tlsrec.Supported {
		t.Skip("TLS pairs do not go to the loops with this Go release")
	}
	fds, _ := openFDs(t)
	func() {
		e1, e2 := &Engine{}, &Engine{}
		defer shutdownNow(e1)
		defer shutdownNow(e2)
		type run struct {
			aPeer, bPeer net.Conn
			ro           *resultOnce
			moved        atomic.Bool
		}
		kinds := [][2]kind{{kTCP, kTCP}, {kTLS, kTCP}, {kTCP, kTLS}, {kTLS, kTLS}, {kTCP, kTCP}, {kTCP, kUnix}}
		runs := make([]*run, len(kinds))
		byTag := map[string]*run{}
		for i, pr := range kinds {
			r := &run{ro: newResultOnce()}
			var a, b net.Conn
			a, r.aPeer = side(t, pr[0])
			b, r.bPeer = side(t, pr[1])
			h, err := e1.Start(a, b, r.ro.afterClose)
			if err != nil {
				t.Fatal(err)
			}
			tag := fmt.Sprint("pipe", i)
			h.SetTag(tag)
			byTag[tag] = r
			runs[i] = r
			write(t, r.aPeer, "x") // bytes in flight, maybe
		}
		sent := 0
		left, err := e1.DetachAll(context.Background(), func(d *Detached) error {
			if sent == 3 {
				return errors.New("hand-over channel broken")
			}
			sent++
			r := byTag[d.Tag]
			if r == nil {
				t.Errorf("unknown tag %q", d.Tag)
				return errors.New("unknown tag")
			}
			r.moved.Store(true)
			// Adopt a copy, as the other process would: DetachAll wipes d.
			cp := &Detached{State: bytes.Clone(d.State), Tag: d.Tag}
			var err error
			if cp.A, err = dupForTest(d.A); err != nil {
				return err
			}
			if cp.B, err = dupForTest(d.B); err != nil {
				return err
			}
			_, err = e2.Adopt(cp, r.ro.afterClose)
			return err
		})
		if err == nil || left != len(kinds)-3 {
			t.Fatalf("DetachAll: %d left, %v", left, err)
		}
		if s1, s2 := e1.Stats(), e2.Stats(); s1.Open != int64(left) || s2.Open != 3 {
			t.Fatalf("open: %d here, %d there", s1.Open, s2.Open)
		}
		for i, r := range runs {
			readN(t, r.bPeer, 1)
			write(t, r.aPeer, "more")
			readN(t, r.bPeer, 4)
			write(t, r.bPeer, "back")
			readN(t, r.aPeer, 4)
			closeWrite(t, r.aPeer)
			closeWrite(t, r.bPeer)
			res := r.ro.wait(t)
			if res.Reason != ReasonEOF || res.BytesAToB != 5 || res.BytesBToA != 4 {
				t.Fatalf("pipe %d (moved %v): result %+v", i, r.moved.Load(), res)
			}
			r.aPeer.Close()
			r.bPeer.Close()
		}
	}()
	if now, _ := openFDs(t); now > fds {
		t.Fatalf("%d descriptors open, %d before", now, fds)
	}
}

// dupForTest duplicates f as sending it with SCM_RIGHTS would.
func dupForTest(f *os.File) (*os.File, error) {
	fd, err := dupFile(f)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// TestDetachAllListen: pipes accepted by Engine.Listen leave with the
// Listener's tag and their Setup's Value, and go on elsewhere.
func TestDetachAllListen(t *testing.T) {
	up := echoUpstream(t)
	e := &Engine{}
	defer shutdownNow(e)
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ro := newResultOnce()
	type owned struct{ n int }
	mine := &owned{7}
	ln, err := e.Listen(tl, Acceptor{Tag: "fwd1", Accept: func(a *Accepted) *Setup {
		return &Setup{Next: addresses(nil, up), AfterClose: ro.afterClose, Value: mine}
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, c, "hello")
	readN(t, c, 5)
	ln.Close()
	e2 := &Engine{}
	defer shutdownNow(e2)
	sent := 0
	left, err := e.DetachAll(context.Background(), func(d *Detached) error {
		if d.Tag != "fwd1" {
			t.Errorf("tag %q", d.Tag)
		}
		if d.Value != mine {
			t.Errorf("Value %v, want the Setup's %v", d.Value, mine)
		}
		sent++
		cp := &Detached{State: bytes.Clone(d.State), Tag: d.Tag}
		cp.A, _ = dupForTest(d.A)
		cp.B, _ = dupForTest(d.B)
		_, err := e2.Adopt(cp, ro.afterClose)
		return err
	})
	if left != 0 || err != nil || sent != 1 {
		t.Fatalf("DetachAll: %d left, %v, %d sent", left, err, sent)
	}
	write(t, c, "again")
	readN(t, c, 5)
	closeWrite(t, c)
	if got := readAll(t, c); got != "" {
		t.Fatalf("read %q after the echo", got)
	}
	if r := ro.wait(t); r.BytesAToB != 10 || r.BytesBToA != 10 {
		t.Fatalf("result %+v", r)
	}
	if s := e.Stats(); s.Open != 0 {
		t.Fatalf("old engine still counts %d pipes", s.Open)
	}
}

// TestAdoptBadState: a truncated, corrupted or foreign State is refused
// with ErrBadState, and the Detached's sockets are closed.
func TestAdoptBadState(t *testing.T) {
	if !tlsrec.Supported {
		t.Skip("TLS pairs do not go to the loops with this Go release")
	}
	good := detachedState(t, kTLS, kTCP)
	e := &Engine{}
	defer shutdownNow(e)
	try := func(what string, st []byte) {
		t.Helper()
		a, _ := side(t, kTCP)
		b, _ := side(t, kTCP)
		fa, _ := a.(*net.TCPConn).File()
		fb, _ := b.(*net.TCPConn).File()
		d := &Detached{A: fa, B: fb, State: st}
		h, err := e.Adopt(d, nil)
		if !errors.Is(err, ErrBadState) || h != nil {
			t.Fatalf("%s: Adopt: %v", what, err)
		}
		if d.A != nil || d.B != nil || d.State != nil {
			t.Fatalf("%s: Adopt left the Detached unwiped", what)
		}
	}
	for _, n := range []int{0, 3, 9, len(good) / 2, len(good) - 1} {
		try(fmt.Sprint("truncated to ", n), bytes.Clone(good[:n]))
	}
	for _, i := range []int{0, 4, 10, 40, len(good) / 2, len(good) - 1} {
		st := bytes.Clone(good)
		st[i] ^= 0x20
		try(fmt.Sprint("byte ", i, " flipped"), st)
	}
	try("trailing byte", append(bytes.Clone(good), 0))
	st := bytes.Clone(good)
	st[4] = stateVersion + 1
	try("next version", st)
	if s := e.Stats(); s.Total != 0 || s.Open != 0 {
		t.Fatalf("stats after refusals: %+v", s)
	}
}

// detachedState runs a pipe of kinds ka, kb with bytes in flight, detaches
// it and returns its State; the sockets are closed.
func detachedState(t testing.TB, ka, kb kind) []byte {
	e := &Engine{}
	defer shutdownNow(e)
	a, aPeer := side(t, ka)
	b, bPeer := side(t, kb)
	h, err := e.Start(a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aPeer.Write([]byte("in flight")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(bPeer, make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
	d, err := h.Detach(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := bytes.Clone(d.State)
	d.Wipe()
	return st
}

// TestDetachedWipe: Wipe zeroes State and closes the sockets; a pipe's
// TLS secrets go nowhere else.
func TestDetachedWipe(t *testing.T) {
	if !tlsrec.Supported {
		t.Skip("TLS pairs do not go to the loops with this Go release")
	}
	e := &Engine{}
	defer shutdownNow(e)
	a, _ := side(t, kTLS)
	b, _ := side(t, kTCP)
	h, err := e.Start(a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.Detach(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, fa, fb := d.State, d.A, d.B
	d.Wipe()
	if !bytes.Equal(st, make([]byte, len(st))) {
		t.Fatal("State not zeroed")
	}
	if d.State != nil || d.A != nil || d.B != nil {
		t.Fatal("Detached still refers to its State or sockets")
	}
	if err := fa.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("A not closed: %v", err)
	}
	if err := fb.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("B not closed: %v", err)
	}
	d.Wipe() // again: nothing happens
}

// FuzzDecodeState: the State decoder never panics, and what it accepts
// encodes back to the same bytes.
func FuzzDecodeState(f *testing.F) {
	if tlsrec.Supported {
		f.Add(detachedState(f, kTLS, kTLS), true)
		f.Add(detachedState(f, kTCP, kTLS), false)
	}
	f.Add(detachedState(f, kTCP, kTCP), true)
	f.Add([]byte("PGDS\x01\x00\x00\x00\x00"), false)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix && len(b) >= 13 {
			// Past the checksum and length, to reach the fields.
			b = bytes.Clone(b[:len(b)-4])
			binary.BigEndian.PutUint32(b[5:], uint32(len(b)-9))
			b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
		}
		s, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		if again := encodeState(s); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded state differs:\n%x\n%x", b, again)
		}
	})
}

// TestDetachAllGoroutinesYieldFails: a goroutine pipe whose yield fails
// goes on, on the loops of the same Engine, with its afterClose; the
// other stays on goroutines.
func TestDetachAllGoroutinesYieldFails(t *testing.T) {
	e := &Engine{Flavour: FlavourGoroutines}
	defer shutdownNow(e)
	var peers [2][2]net.Conn
	var ros [2]*resultOnce
	for i := range peers {
		a, aPeer := side(t, kTCP)
		b, bPeer := side(t, kTCP)
		ros[i] = newResultOnce()
		if _, err := e.Start(a, b, ros[i].afterClose); err != nil {
			t.Fatal(err)
		}
		peers[i] = [2]net.Conn{aPeer, bPeer}
	}
	calls := 0
	left, err := e.DetachAll(context.Background(), func(*Detached) error {
		calls++
		return errors.New("channel broken")
	})
	if err == nil || left != 2 || calls != 1 {
		t.Fatalf("DetachAll: %d left, %v, %d yields", left, err, calls)
	}
	if s := e.Stats(); s.Open != 2 || s.OnLoops != 1 || s.Total != 2 {
		t.Fatalf("stats %+v", s)
	}
	for i, pp := range peers {
		write(t, pp[0], "ping")
		readN(t, pp[1], 4)
		write(t, pp[1], "pong")
		readN(t, pp[0], 4)
		closeWrite(t, pp[0])
		closeWrite(t, pp[1])
		if r := ros[i].wait(t); r.Reason != ReasonEOF || r.BytesAToB != 4 || r.BytesBToA != 4 {
			t.Fatalf("pipe %d: result %+v", i, r)
		}
	}
}

// TestDetachAllCancelled: with a done context DetachAll takes nothing and
// every pipe goes on.
func TestDetachAllCancelled(t *testing.T) {
	e := &Engine{}
	defer shutdownNow(e)
	a, aPeer := side(t, kTCP)
	b, bPeer := side(t, kTCP)
	ro := newResultOnce()
	if _, err := e.Start(a, b, ro.afterClose); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	left, err := e.DetachAll(ctx, func(*Detached) error {
		t.Error("yield called")
		return nil
	})
	if left != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("DetachAll: %d left, %v", left, err)
	}
	write(t, aPeer, "still")
	readN(t, bPeer, 5)
	closeWrite(t, aPeer)
	closeWrite(t, bPeer)
	if r := ro.wait(t); r.Reason != ReasonEOF {
		t.Fatalf("result %+v", r)
	}
}

// TestDetachAllGoroutinesYieldFailsHandle: a goroutine pipe whose yield
// fails goes on on the loops, and its Handle goes on with it: a Stop that
// came while the pipe was away, or one after, stops it with its farewell;
// Done closes only once it has ended; the tag is kept.
func TestDetachAllGoroutinesYieldFailsHandle(t *testing.T) {
	for _, during := range []bool{true, false} {
		name := "stop after"
		if during {
			name = "stop while away"
		}
		t.Run(name, func(t *testing.T) {
			e := &Engine{Flavour: FlavourGoroutines}
			defer shutdownNow(e)
			h, aPeer, bPeer, ro := startTCP(t, e)
			h.SetTag("s1")
			done := h.Done()
			left, err := e.DetachAll(context.Background(), func(d *Detached) error {
				if d.Tag != "s1" {
					t.Errorf("tag %q", d.Tag)
				}
				if during {
					h.Stop([]byte("bye\r\n"))
				}
				return errors.New("channel broken")
			})
			if err == nil || left != 1 {
				t.Fatalf("DetachAll: %d left, %v", left, err)
			}
			if !during {
				select {
				case <-done:
					t.Fatal("Done closed while the pipe goes on")
				default:
				}
				write(t, aPeer, "ping")
				readN(t, bPeer, 4)
				h.Stop([]byte("bye\r\n"))
			}
			if got := readN(t, aPeer, 5); got != "bye\r\n" {
				t.Fatalf("A read %q", got)
			}
			r := ro.wait(t)
			if r.Reason != ReasonStopped {
				t.Fatalf("result %+v", r)
			}
			<-done
			if _, err := h.Detach(context.Background()); err == nil {
				t.Fatal("Detach of an ended pipe: no error")
			}
			_ = bPeer
		})
	}
}

// TestDetachAllGoroutinesCannotStay: a goroutine pipe whose yield fails
// when it cannot be carried on here either (the Engine is shutting down)
// ends with that error: its afterClose runs once, its Done closes.
func TestDetachAllGoroutinesCannotStay(t *testing.T) {
	e := &Engine{Flavour: FlavourGoroutines}
	h, aPeer, bPeer, ro := startTCP(t, e)
	write(t, aPeer, "ping")
	readN(t, bPeer, 4)
	_, err := e.DetachAll(context.Background(), func(*Detached) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil { // no pipe is left here
			t.Errorf("Shutdown: %v", err)
		}
		return errors.New("channel broken")
	})
	if !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("DetachAll: %v, want ErrShuttingDown among its errors", err)
	}
	r := ro.wait(t)
	if r.Reason != ReasonError || !errors.Is(r.Err, ErrShuttingDown) || r.BytesAToB != 4 {
		t.Fatalf("result %+v", r)
	}
	<-h.Done()
	buf := make([]byte, 1)
	if n, err := aPeer.Read(buf); err == nil {
		t.Fatalf("A's peer read %q: the socket is open", buf[:n])
	}
}
