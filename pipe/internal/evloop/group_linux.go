package evloop

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// Group owns many connection pairs spread over a fixed set of epoll loops.
// Its methods may be called from any goroutine.
type Group struct {
	cfg   Config
	loops []*loop
	next  atomic.Uint32

	bytesAToB, bytesBToA atomic.Int64 // all pairs, running ones included

	mu        sync.Mutex
	closing   bool
	active    int           // pairs accepted by Add whose done has not returned
	drained   chan struct{} // closed when closing && active == 0
	listeners map[*Listener]struct{}
	noListen  bool // Shutdown began: Listen refuses
	stopOnce  sync.Once
	loopsWG   sync.WaitGroup // running loop goroutines
}

// New makes cfg.Loops loops (default GOMAXPROCS), each an epoll instance
// and an eventfd. A loop's goroutine runs only while the loop has pairs:
// a Group without pairs holds descriptors but no goroutine.
func New(cfg Config) (*Group, error) {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.PipeSize <= 0 {
		cfg.PipeSize = 256 << 10
	}
	if cfg.MaxIdlePipes <= 0 {
		cfg.MaxIdlePipes = 16
	}
	g := &Group{cfg: cfg, drained: make(chan struct{})}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(g, i)
		if err != nil {
			for _, l := range g.loops {
				l.freeAll()
			}
			return nil, fmt.Errorf("evloop: start loop %d of %d: %w", i+1, cfg.Loops, err)
		}
		g.loops = append(g.loops, l)
	}
	return g, nil
}

// Add hands the pair a, b to the Group, which moves bytes both ways until
// both directions are done, closes both descriptors and then calls done (if
// not nil) exactly once, on a goroutine of its own. When Add returns an error
// (ErrShuttingDown, invalid Endpoint) the Endpoints are still the caller's
// and done is never called.
func (g *Group) Add(a, b Endpoint, opts core.Options, done func(core.Result)) error {
	_, err := g.AddWithPrefix(a, b, nil, nil, opts, done)
	return err
}

// AddWithPrefix is Add for a pair whose sides have already been read from:
// fromA (bytes read from a) is written to b, and fromB to a, before
// anything else read from a or b; they count in the Result like other bytes.
// The slices are copied. The Pair it returns can stop the pair (Pair.Stop).
func (g *Group) AddWithPrefix(a, b Endpoint, fromA, fromB []byte, opts core.Options, done func(core.Result)) (Pair, error) {
	p, err := endpointPair(a, b, opts, done)
	if err != nil {
		return Pair{}, fmt.Errorf("evloop: add pair: %w", err)
	}
	if err := p.ab.preload(fromA); err != nil {
		return Pair{}, fmt.Errorf("evloop: add pair: %w", err)
	}
	if err := p.ba.preload(fromB); err != nil {
		return Pair{}, fmt.Errorf("evloop: add pair: %w", err)
	}
	return g.start(p)
}

// endpointPair makes the pair of a and b, with their record layers.
func endpointPair(a, b Endpoint, opts core.Options, done func(core.Result)) (*pair, error) {
	if !a.Valid() || !b.Valid() || a.fd == b.fd {
		return nil, fmt.Errorf("invalid endpoints (%d, %d)", a.fd-1, b.fd-1)
	}
	p := newPair(a.fd-1, b.fd-1, opts, done)
	p.a.tls, p.b.tls = a.tls, b.tls
	if a.tls != nil || b.tls != nil {
		t := new([2]dirTLS)
		p.ab.t, p.ba.t = &t[0], &t[1]
	}
	return p, nil
}

// start opens the records p's directions hold and gives p to the next
// loop, unless the Group is shutting down.
func (g *Group) start(p *pair) (Pair, error) {
	p.ab.preloadRecords()
	p.ba.preloadRecords()
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return Pair{}, ErrShuttingDown
	}
	g.active++
	g.mu.Unlock()
	l := g.loops[int(g.next.Add(1))%len(g.loops)]
	l.submit(p)
	return Pair{p: p, l: l}, nil
}

// newPair makes a pair of the sockets fa and fb (fb -1: not connected yet),
// with DefaultHalfCloseLinger for a zero HalfCloseLinger.
func newPair(fa, fb int, opts core.Options, done func(core.Result)) *pair {
	p := new(pair)
	initPair(p, fa, fb, opts, done)
	return p
}

// initPair is newPair for a pair already allocated (a Listener's, whose
// reference the Acceptor gets before the pair is set up).
func initPair(p *pair, fa, fb int, opts core.Options, done func(core.Result)) {
	if opts.HalfCloseLinger == 0 {
		opts.HalfCloseLinger = core.DefaultHalfCloseLinger
	}
	*p = pair{opts: opts, done: done, start: time.Now(), hidx: -1}
	p.a = end{fd: fa, side: core.SideA, p: p}
	p.b = end{fd: fb, side: core.SideB, p: p}
	p.ab = dir{p: p, src: &p.a, dst: &p.b}
	p.ba = dir{p: p, src: &p.b, dst: &p.a}
}

// Active returns the number of pairs added whose done callback has not
// returned yet.
func (g *Group) Active() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active
}

// Bytes returns the bytes written to B sides and to A sides by all pairs
// so far, running ones included.
func (g *Group) Bytes() (aToB, bToA int64) {
	return g.bytesAToB.Load(), g.bytesBToA.Load()
}

// Shutdown refuses new pairs, waits for the running ones to end, and when
// ctx ends first closes the rest (Reason ReasonShutdown) and returns
// ctx.Err() once their done callbacks have returned. Then it stops the loops
// and frees their resources; the Group cannot be used again.
func (g *Group) Shutdown(ctx context.Context) error {
	g.closeListeners()
	g.mu.Lock()
	if !g.closing {
		g.closing = true
		if g.active == 0 {
			close(g.drained)
		}
	}
	g.mu.Unlock()
	var err error
	select {
	case <-g.drained:
	case <-ctx.Done():
		err = ctx.Err()
		for _, l := range g.loops {
			l.forceClose()
		}
		<-g.drained
	}
	g.stopLoops()
	return err
}

// closeListeners closes the Group's listeners, so that no loop makes a
// pair once Shutdown has begun.
func (g *Group) closeListeners() {
	g.mu.Lock()
	g.noListen = true
	ls := make([]*Listener, 0, len(g.listeners))
	for l := range g.listeners {
		ls = append(ls, l)
	}
	g.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

// Close force-closes every pair at once (Reason ReasonShutdown), waits for
// their done callbacks and stops the loops.
func (g *Group) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Shutdown(ctx)
	return nil
}

// stopLoops stops the loops and frees their descriptors; concurrent
// callers all return once that is done.
func (g *Group) stopLoops() {
	g.stopOnce.Do(g.stopEach)
	g.loopsWG.Wait()
}

func (g *Group) stopEach() {
	for _, l := range g.loops {
		l.stop()
	}
}

// Running returns the number of loops whose goroutine is running: 0 for a
// Group without pairs.
func (g *Group) Running() int {
	n := 0
	for _, l := range g.loops {
		l.mu.Lock()
		if l.running {
			n++
		}
		l.mu.Unlock()
	}
	return n
}

// pairDone runs the done callback of a closed pair and then counts it out.
func pairDone(g *Group, done func(core.Result), s core.Result) {
	defer g.countOut()
	if done != nil {
		done(s)
	}
}

func (g *Group) countOut() {
	g.mu.Lock()
	g.active--
	if g.active == 0 && g.closing {
		close(g.drained)
	}
	g.mu.Unlock()
}
