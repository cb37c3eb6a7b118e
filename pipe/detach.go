package pipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

// Detach and Adopt move a running pipe from one Engine to another, usually
// in another process (a binary upgrade): Detach takes it off its event
// loop between two events, with what the loop held for it (bytes read and
// not yet written, TLS records read and not yet opened, the record layers,
// byte counts and timers) in Detached.State, and Adopt carries it on.
// Nothing is waited for: a pair in the middle of a transfer leaves with its
// bytes in flight.

// ErrNotDetachable is returned (wrapped) by Handle.Detach for a pipe that
// cannot leave its process: one on goroutines that is not between two
// plain stream sockets (TLS there lives in crypto/tls, whose record layer
// cannot be handed over after the handshake), one on goroutines that is
// half-closed, one that is being stopped or ending, or one still
// connecting its upstream (Engine.Listen). The pipe goes on untouched.
var ErrNotDetachable = errors.New("pipe: pipe cannot be detached")

// Detached is a pipe taken out of its process by Detach, to be carried on
// by Engine.Adopt, usually in another process: A and B go over a Unix
// socket with SCM_RIGHTS, State as bytes, Tag alongside.
type Detached struct {
	// A and B are the two sockets. The pipe's own descriptors were
	// dropped without shutting the sockets down.
	A, B *os.File
	// State is opaque, versioned and checksummed: the start time, byte
	// counts, options and how far their timers have run, half-close
	// state, the TLS record layer of each TLS side (suite, traffic
	// secrets, sequence numbers, records read and not yet opened) and the
	// bytes read and not yet written. It holds secrets: keep it off disk
	// and logs, and Wipe it once sent.
	State []byte
	// Tag is the Listener's Acceptor.Tag for a pipe accepted by
	// Engine.Listen, else what Handle.SetTag set.
	Tag string
	// Value is the Setup.Value of a pipe accepted by Engine.Listen: the
	// owner's own, in this process only (it is not sent).
	Value any
}

// Wipe zeroes State (it holds traffic secrets) and closes A and B: for the
// old process, once the Detached is sent (sending duplicated the
// descriptors). It may be called more than once.
func (d *Detached) Wipe() {
	clear(d.State)
	d.State = nil
	for _, f := range [2]**os.File{&d.A, &d.B} {
		if *f != nil {
			_ = (*f).Close()
			*f = nil
		}
	}
}

// Detach takes the pipe out of this process, at a clean point, and returns
// it to be sent to another (and carried on there by Engine.Adopt): the
// pipe no longer runs here, afterClose is not called here (the adopting
// Engine calls its own, once, with the totals from both processes), and
// Done's channel closes. The caller owns the Detached: send it and Wipe
// it, or Adopt it again.
//
// A pipe on the event loops leaves between two events, without waiting
// for its peers: bytes read and not yet written go along in State; ctx
// matters only before Detach reaches the loop. A pipe on goroutines
// between two plain stream sockets stops like Stop: reads are
// interrupted and each direction first writes what it read, which waits
// for a peer that is slow to take it; if ctx ends first, the pipe goes on
// untouched and ctx's error is returned. A pipe that cannot leave (TLS
// on goroutines, other conns, half-closed on goroutines, being stopped)
// gets an error wrapping ErrNotDetachable and goes on untouched; one that
// has ended gets an error too.
func (h *Handle) Detach(ctx context.Context) (*Detached, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if h.p != nil {
		det, err := h.p.detachGo(ctx)
		if err == nil {
			h.finished()
		}
		return det, err
	}
	d := h.ld
	if d == nil { // a pipe refused before it began (ErrNilConn)
		return nil, ErrNotDetachable
	}
	dets, errs := d.e.detach(ctx, []*loopDone{d})
	if errs[0] != nil {
		return nil, errs[0]
	}
	d.e.detachDone(d)
	return dets[0], nil
}

// detachBatch bounds how many pipes DetachAll takes off the loops at once:
// each waits for the others of its batch to be sent.
const detachBatch = 256

// DetachAll detaches every pipe of the Engine that can leave (those
// accepted by Engine.Listen included) and gives each to yield, which sends
// it; DetachAll then Wipes it. yield must not keep the Detached. When
// yield fails, the pipe is adopted again here (it goes on as if nothing
// happened, its Handle still valid), no further pipe is detached, and the
// error is returned; the same when ctx ends. It returns how many pipes
// stayed: those that cannot leave (see ErrNotDetachable), failed to, or
// were not reached.
//
// Pipes entered while DetachAll runs stay; close the Listeners first.
// Pipes on the loops leave first, in batches (a loop's share of a batch
// in one of its turns), so that each waits only for its batch to be sent;
// then those on goroutines, one at a time, each as Handle.Detach (a
// goroutine pipe whose yield fails is adopted again on the loops: its
// afterClose and its Handle go on with it; a Stop that came while it was
// away reaches it there).
func (e *Engine) DetachAll(ctx context.Context, yield func(*Detached) error) (left int, err error) {
	e.mu.Lock()
	left = len(e.pipes) // goroutine pipes do not leave
	all := make([]*loopDone, 0, len(e.loopPipes))
	for d := range e.loopPipes {
		all = append(all, d)
	}
	e.mu.Unlock()
	for len(all) > 0 {
		if err = ctx.Err(); err != nil {
			return left + len(all), err
		}
		batch := all[:min(len(all), detachBatch)]
		all = all[len(batch):]
		if e.batchHook != nil {
			e.batchHook()
		}
		dets, errs := e.detach(ctx, batch)
		for i, d := range batch {
			if errs[i] != nil {
				if !errors.Is(errs[i], errEnded) {
					left++
				}
				continue
			}
			if err == nil {
				if yerr := yield(dets[i]); yerr != nil {
					err = fmt.Errorf("pipe: DetachAll: yield: %w", yerr)
				}
			}
			if err != nil {
				e.readopt(d, dets[i])
				left++
				continue
			}
			dets[i].Wipe()
			e.detachDone(d)
		}
		if err != nil {
			return left + len(all), err
		}
	}
	return e.detachAllGo(ctx, yield, left)
}

// detachAllGo is DetachAll for the goroutine pipes, one after the other
// (each waits until both its directions have written what they read).
// left counts them in; those that leave are counted out.
func (e *Engine) detachAllGo(ctx context.Context, yield func(*Detached) error, left int) (int, error) {
	e.mu.Lock()
	ps := make([]*pipe, 0, len(e.pipes))
	for p := range e.pipes {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	for _, p := range ps {
		if err := ctx.Err(); err != nil {
			return left, err
		}
		det, err := p.detachGo(ctx)
		if err != nil {
			continue // stays (or has ended)
		}
		if yerr := yield(det); yerr != nil {
			// Carried on here, on the loops, with its Handle and
			// afterClose.
			if aerr := e.stayGo(p, det); aerr != nil {
				yerr = errors.Join(yerr, aerr)
			}
			return left, fmt.Errorf("pipe: DetachAll: yield: %w", yerr)
		}
		det.Wipe()
		p.h.finished()
		left--
	}
	return left, nil
}

// adoptAgain is Adopt for a pipe that was already counted here once.
func (e *Engine) adoptAgain(d *Detached, afterClose func(Result)) (*Handle, error) {
	h, err := e.Adopt(d, afterClose)
	if err == nil {
		e.total.Add(-1)
	}
	return h, err
}

// errEnded: the pipe ended before Detach reached it.
var errEnded = errors.New("pipe: detach: the pipe has ended")

// detach takes the pairs of ds off the loops. Each Detached (or error)
// is at the index of its pipe; a detached pipe is still counted on the
// Engine (detachDone or readopt settles it).
func (e *Engine) detach(ctx context.Context, ds []*loopDone) ([]*Detached, []error) {
	errs := make([]error, len(ds))
	pairs := make([]evloop.Pair, 0, len(ds))
	idx := make([]int, 0, len(ds))
	for i, d := range ds {
		h := &d.h
		h.mu.Lock()
		switch {
		case h.closing || h.ended || h.detached:
			errs[i] = errEnded
		case h.stopped:
			errs[i] = fmt.Errorf("pipe: detach: the pipe is being stopped: %w", ErrNotDetachable)
		case h.detaching:
			errs[i] = errors.New("pipe: detach: already being detached")
		default:
			h.detaching = true
			pairs = append(pairs, h.pair)
			idx = append(idx, i)
		}
		h.mu.Unlock()
	}
	dets := make([]*Detached, len(ds))
	if len(pairs) == 0 {
		return dets, errs
	}
	if err := ctx.Err(); err != nil {
		for _, i := range idx {
			ds[i].h.stayed()
			errs[i] = err
		}
		return dets, errs
	}
	e.mu.Lock()
	g := e.group // a group with pairs on it is not retired
	e.mu.Unlock()
	snaps, serrs := g.Detach(pairs)
	for k, i := range idx {
		d := ds[i]
		if serr := serrs[k]; serr != nil {
			d.h.stayed()
			switch {
			case errors.Is(serr, evloop.ErrEnded):
				errs[i] = errEnded
			case errors.Is(serr, evloop.ErrStopping), errors.Is(serr, evloop.ErrConnecting):
				errs[i] = fmt.Errorf("pipe: detach: %w (%w)", ErrNotDetachable, serr)
			default:
				errs[i] = fmt.Errorf("pipe: detach: %w", serr)
			}
			continue
		}
		dets[i] = detached(snaps[k], d.h.getTag(), d.h.value)
	}
	return dets, errs
}

// detached makes a Detached of a Snapshot and wipes the record layers
// it carried in memory.
func detached(s *evloop.Snapshot, tag string, value any) *Detached {
	det := &Detached{
		A:     os.NewFile(uintptr(s.A), "pipe-detached-a"),
		B:     os.NewFile(uintptr(s.B), "pipe-detached-b"),
		State: encodeState(s),
		Tag:   tag,
		Value: value,
	}
	for _, st := range s.TLS {
		if st != nil {
			st.Wipe()
		}
	}
	for i := range s.Dirs {
		clear(s.Dirs[i].Pending)
	}
	return det
}

// detachDone settles a pipe that has left: its Handle is done and the
// Engine counts it out.
func (e *Engine) detachDone(d *loopDone) {
	d.h.mu.Lock()
	d.h.detaching, d.h.detached = false, true
	d.h.farewell = nil
	d.h.mu.Unlock()
	e.leaveLoop(d)
	d.h.finished()
}

// readopt carries on here a pipe DetachAll took off the loops and could
// not send: same Handle, same afterClose. When even that fails (out of
// descriptors, say) the pipe ends with that error and its afterClose runs.
func (e *Engine) readopt(d *loopDone, det *Detached) {
	s, fa, fb, err := det.take()
	if err == nil {
		var pair evloop.Pair
		if pair, err = e.addSnapshot(s, fa, fb, d); err == nil {
			d.h.mu.Lock()
			d.h.pair, d.h.detaching = pair, false
			fw, stop := d.h.farewell, d.h.stopped
			d.h.farewell = nil
			if stop {
				pair.Stop(fw) // a Stop came while the pipe was away
			}
			d.h.mu.Unlock()
			return
		}
		unix.Close(fa)
		unix.Close(fb)
	}
	det.Wipe()
	d.h.mu.Lock()
	d.h.detaching = false
	d.h.mu.Unlock()
	now := time.Now()
	r := Result{End: now, Reason: ReasonError, Err: fmt.Errorf("pipe: adopt again after a failed hand-over: %w", err)}
	if s != nil {
		r.Start, r.BytesAToB, r.BytesBToA = s.Start, s.Dirs[0].Bytes, s.Dirs[1].Bytes
	}
	go d.run(r)
}

// take decodes d's State and takes its sockets: descriptors of its own,
// non-blocking and close-on-exec. d is used up (wiped, files closed)
// whatever happens.
func (d *Detached) take() (*evloop.Snapshot, int, int, error) {
	defer d.Wipe()
	s, err := decodeState(d.State)
	if err != nil {
		return nil, -1, -1, err
	}
	if d.A == nil || d.B == nil {
		wipeSnapshot(s)
		return nil, -1, -1, errors.New("pipe: adopt: Detached without its sockets")
	}
	fa, err := dupFile(d.A)
	if err != nil {
		wipeSnapshot(s)
		return nil, -1, -1, err
	}
	fb, err := dupFile(d.B)
	if err != nil {
		unix.Close(fa)
		wipeSnapshot(s)
		return nil, -1, -1, err
	}
	return s, fa, fb, nil
}

func wipeSnapshot(s *evloop.Snapshot) {
	for _, st := range s.TLS {
		if st != nil {
			st.Wipe()
		}
	}
}

// dupFile duplicates f's descriptor (close-on-exec) without f.Fd, which
// would make the socket blocking.
func dupFile(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("pipe: adopt: socket %s: %w", f.Name(), err)
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, fmt.Errorf("pipe: adopt: socket %s: %w", f.Name(), err)
	}
	if derr != nil {
		return -1, fmt.Errorf("pipe: adopt: dup socket %s: %w", f.Name(), os.NewSyscallError("fcntl", derr))
	}
	return nfd, nil
}

// Adopt carries on a pipe that Detach took out of a process (this one or
// another): it runs on this Engine's event loops as it ran there, with
// the same start (Result.Start), byte counts that include the bytes moved
// before the hand-over, its own Options (IdleTimeout, MaxLifetime and
// HalfCloseLinger go on from where they were: a pipe idle for 10 s of a
// 30 s IdleTimeout ends after 20 s more of silence), its half-close state
// and its bytes in flight. afterClose (if not nil) is called exactly once,
// after both sockets are closed, with the totals.
//
// Adopt uses d up: it zeroes State and closes d.A and d.B (the sockets
// live on in the loops), also on error. A State that is truncated,
// corrupted, of another version or inconsistent gets an error wrapping
// ErrBadState; once Shutdown has begun, ErrShuttingDown. On error the
// sockets are closed (without shutdown): the peers see the connection
// end. Adopted pipes run on the event loops whatever the Flavour; where
// there are none (not Linux) Adopt returns ErrUnsupported.
func (e *Engine) Adopt(d *Detached, afterClose func(Result)) (*Handle, error) {
	if !evloop.Supported {
		d.Wipe()
		return nil, fmt.Errorf("pipe: adopt: %w", ErrUnsupported)
	}
	s, fa, fb, err := d.take()
	if err != nil {
		return nil, fmt.Errorf("pipe: adopt: %w", err)
	}
	ld := newLoopDone(e, afterClose)
	ld.h.tag = d.Tag
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		wipeSnapshot(s)
		unix.Close(fa)
		unix.Close(fb)
		return nil, ErrShuttingDown
	}
	e.total.Add(1)
	e.open.Add(1)
	e.mu.Unlock()
	pair, err := e.addSnapshot(s, fa, fb, ld)
	if err != nil {
		wipeSnapshot(s)
		unix.Close(fa)
		unix.Close(fb)
		e.mu.Lock()
		e.total.Add(-1)
		e.open.Add(-1)
		e.loopsIdleLocked()
		e.checkDrainedLocked()
		e.mu.Unlock()
		return nil, fmt.Errorf("pipe: adopt: %w", err)
	}
	ld.h.setPair(pair)
	return &ld.h, nil
}

// addSnapshot puts a decoded pipe on the loops with d as its done
// callback, making the loops if needed; d is counted on them (unless
// already, as when re-adopted). On error fa and fb are still the caller's.
func (e *Engine) addSnapshot(s *evloop.Snapshot, fa, fb int, d *loopDone) (evloop.Pair, error) {
	ea, err := evloop.EndpointFromFD(fa, s.TLS[0])
	if err != nil {
		return evloop.Pair{}, err
	}
	eb, err := evloop.EndpointFromFD(fb, s.TLS[1])
	if err != nil {
		return evloop.Pair{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.group == nil {
		cfg := e.loopCfg
		cfg.Loops = e.Loops
		g, err := evloop.New(cfg)
		if err != nil {
			return evloop.Pair{}, err
		}
		e.group = g
	}
	_, counted := e.loopPipes[d]
	if !counted {
		e.onLoopLocked(d)
	}
	pair, err := e.group.AddSnapshot(ea, eb, s, d.run)
	if err != nil && !counted {
		e.onLoops--
		delete(e.loopPipes, d)
	}
	return pair, err
}

// stayed ends a Detach that did not happen: the pipe goes on here.
func (h *Handle) stayed() {
	h.mu.Lock()
	h.detaching = false
	h.farewell = nil
	h.mu.Unlock()
}

func (h *Handle) getTag() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tag
}
