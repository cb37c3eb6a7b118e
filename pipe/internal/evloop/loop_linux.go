package evloop

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

const (
	// events every socket is registered for, once, edge-triggered.
	// EPOLLPRI costs nothing until urgent data comes (urgent_linux.go).
	sockEvents = unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	readEvents = unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	writEvents = unix.EPOLLOUT | unix.EPOLLHUP | unix.EPOLLERR
)

// loop is one epoll instance and the goroutine that waits on it. The
// goroutine runs only while the loop has pairs (or submissions): it starts
// with the first submission and returns once the loop is empty, so an
// idle Group holds descriptors but no goroutine. Everything below mu is
// touched only by that goroutine.
type loop struct {
	g    *Group
	id   int
	epfd int
	evfd int // eventfd: wakes the loop for submissions, force-close and stop
	base time.Time

	// The epoll descriptor is itself registered with Go's netpoller: the
	// loop goroutine parks there (no thread held) and wakes when epfd has
	// events or the read deadline (next timer) passes.
	epfile *os.File
	epraw  syscall.RawConn
	epDL   time.Time // deadline currently set on epfile

	mu       sync.Mutex
	inbox    []*pair
	ctl      []func(*loop) // run by the loop goroutine (post)
	running  bool          // the loop goroutine is running (or about to)
	freed    bool          // descriptors closed (stopped)
	woken    bool          // an eventfd write is pending
	forcing  bool          // close every pair, now and later (Shutdown deadline)
	stopping bool

	now  int64 // loop clock (ns since base, > 0), read after each wait
	seq  uint32
	ends map[int32]*end
	// listeners the loop accepts on; with any, the loop owns a thread
	// (ownThread) and runs until stopped.
	listeners map[int32]*lnState
	timers    timerHeap[*pair]
	runq      []*dir // directions with work left (new readiness or budget spent)
	spare     []*dir
	pipes     []*kpipe // idle kernel pipes
	bufs      [][]byte // idle buffers
	pipeCap   int      // capacity asked of new kernel pipes
	scratch   []byte   // shared by all pairs of the loop for small reads (relay)
	// slots and iov: readPlainForTLS's readv into a direction's buffer,
	// up to four records' plaintext (bufSize holds four); empty between
	// calls.
	slots  [][]byte
	iov    [4]unix.Iovec
	events []unix.EpollEvent
	// yield: the loop may have made goroutines runnable (a done callback
	// started, an Acceptor called) since it last waited (waitOwn).
	yield bool
}

func newLoop(g *Group, id int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	l := &loop{g: g, id: id, epfd: epfd, evfd: evfd, base: time.Now(),
		ends: make(map[int32]*end), listeners: make(map[int32]*lnState), pipeCap: g.cfg.PipeSize,
		scratch: make([]byte, scratchSize), events: make([]unix.EpollEvent, 256)}
	l.timers.due = func(p *pair) int64 { return p.due }
	l.timers.setIx = func(p *pair, i int) { p.hidx = i }
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)} // Pad 0: never a socket's seq
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		l.freeAll()
		return nil, fmt.Errorf("epoll_ctl add eventfd: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		l.freeAll()
		return nil, fmt.Errorf("epoll fd non-blocking: %w", err)
	}
	l.epfile = os.NewFile(uintptr(epfd), "evloop-epoll") // pollable: non-blocking
	raw, err := l.epfile.SyscallConn()
	if err != nil {
		l.freeAll()
		return nil, fmt.Errorf("epoll fd raw conn: %w", err)
	}
	l.epraw = raw
	return l, nil
}

// submit queues a new pair for the loop and starts the loop goroutine if
// it is not running (any goroutine).
func (l *loop) submit(p *pair) {
	l.mu.Lock()
	l.inbox = append(l.inbox, p)
	l.runLocked()
}

// post makes the loop goroutine run f, starting it if needed (any
// goroutine).
func (l *loop) post(f func(*loop)) {
	l.mu.Lock()
	l.ctl = append(l.ctl, f)
	l.runLocked()
}

// runLocked starts the loop goroutine, or wakes it if it is running, for
// what was just queued; it unlocks l.mu.
func (l *loop) runLocked() {
	if !l.running {
		// The new goroutine takes the queues before it waits: no wake-up.
		l.running = true
		l.g.loopsWG.Add(1)
		l.mu.Unlock()
		go runLoop(l)
		return
	}
	l.wakeLocked()
}

// ownThread makes the loop wait in epoll_wait itself, from now on, rather
// than parked in Go's netpoller: a loop that accepts connections is busy
// for the life of its listener, and each wake-up then costs one epoll_wait
// instead of three. The epoll descriptor is duplicated and Go's copy closed,
// so that the netpoller stops watching it (loop goroutine only).
func (l *loop) ownThread() {
	if l.epfile == nil {
		return
	}
	fd, err := unix.FcntlInt(uintptr(l.epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return // keep parking in the netpoller: slower, still correct
	}
	l.epfile.Close()
	l.epfile, l.epraw, l.epfd = nil, nil, fd
}

// forceClose makes the loop close all its pairs, now and later (any goroutine).
func (l *loop) forceClose() {
	l.mu.Lock()
	l.forcing = true
	if !l.running {
		l.mu.Unlock() // no pair to close; later ones are closed on arrival
		return
	}
	l.wakeLocked()
}

// stop makes the loop goroutine return and frees the loop's descriptors
// (any goroutine, once, after the Group has drained).
func (l *loop) stop() {
	l.mu.Lock()
	l.stopping = true
	if !l.running {
		l.mu.Unlock()
		l.freeAll()
		return
	}
	l.wakeLocked()
}

// parkOut ends the loop goroutine when nothing was submitted meanwhile; the
// next submit starts a new one. The caller found the loop without pairs.
func (l *loop) parkOut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.inbox) > 0 || len(l.ctl) > 0 || l.stopping {
		return false
	}
	l.running = false
	return true
}

func (l *loop) wakeLocked() {
	wake := !l.woken
	l.woken = true
	l.mu.Unlock()
	if wake {
		var one = [8]byte{1}
		unix.Write(l.evfd, one[:]) // only fails when the counter is full: already woken
	}
}

// freeAll frees the loop's descriptors once its goroutine has returned
// (or never ran); it is called once.
func (l *loop) freeAll() {
	if l.freed {
		return
	}
	l.freed = true
	for _, kp := range l.pipes {
		kp.close()
	}
	l.pipes, l.bufs = nil, nil
	unix.Close(l.evfd)
	if l.epfile != nil {
		l.epfile.Close()
	} else {
		unix.Close(l.epfd)
	}
}

func (l *loop) clock() int64 { return int64(time.Since(l.base)) + 1 }

// runLoop is the loop goroutine: take new pairs, wait, dispatch readiness,
// move bytes, fire timers; until stopped, or until the loop has no pair
// left (the next submit starts a new goroutine).
func runLoop(l *loop) {
	defer l.g.loopsWG.Done()
	events := l.events
	l.now = l.clock()
	for {
		if l.takeInbox() {
			l.freeAll()
			return
		}
		if len(l.ends) == 0 && len(l.runq) == 0 && l.timers.len() == 0 && len(l.listeners) == 0 && l.parkOut() {
			return
		}
		n, err := l.wait(events)
		if err != nil {
			// Only EBADF, EFAULT or EINVAL: a bug in this package, not peer input.
			panic(fmt.Sprintf("evloop: loop %d: epoll_wait: %v", l.id, err))
		}
		l.now = l.clock()
		for i := 0; i < n; i++ {
			l.dispatch(&events[i])
		}
		l.runQueue()
		l.runTimers()
	}
}

// wait returns ready events: at once if there are any or work is queued,
// else after parking in Go's netpoller until epfd is readable or the next
// timer is due.
func (l *loop) wait(events []unix.EpollEvent) (int, error) {
	if l.epfile == nil && len(l.runq) == 0 {
		return l.waitOwn(events)
	}
	if len(l.runq) > 0 {
		n, err := pollEvents(l.epfd, events)
		if err == unix.EINTR {
			return 0, nil
		}
		return max(n, 0), err
	}
	var dl time.Time
	if l.timers.len() > 0 {
		dl = l.base.Add(time.Duration(l.timers.peek().due - 1))
	}
	if !dl.Equal(l.epDL) {
		l.epfile.SetReadDeadline(dl)
		l.epDL = dl
	}
	var n int
	var err error
	// Read polls first and parks only when nothing is ready. It must poll
	// first: before it parks, Read (prepareRead) drops any readiness the
	// netpoller recorded for epfd while the loop was busy.
	rerr := l.epraw.Read(func(uintptr) bool {
		n, err = pollEvents(l.epfd, events)
		if err == unix.EINTR {
			n, err = 0, nil
		}
		return n > 0 || err != nil
	})
	if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
		return 0, rerr
	}
	return max(n, 0), err
}

// waitOwn is wait for a loop that owns a thread (ownThread): it blocks in
// epoll_wait until an event or the next timer or listener pause is due.
// Goroutines the loop may have made runnable (done callbacks above all)
// get the P first: with GOMAXPROCS 1 they would otherwise wait for the
// runtime's monitor to take it from the blocked system call.
func (l *loop) waitOwn(events []unix.EpollEvent) (int, error) {
	if l.yield {
		l.yield = false
		runtime.Gosched()
	}
	next := l.resumeListeners()
	if l.timers.len() > 0 {
		if due := l.timers.peek().due; next == 0 || due < next {
			next = due
		}
	}
	ms := -1
	if next != 0 {
		d := next - l.clock()
		ms = int(max((d+int64(time.Millisecond)-1)/int64(time.Millisecond), 0))
	}
	n, err := unix.EpollWait(l.epfd, events, ms)
	if err == unix.EINTR {
		return 0, nil
	}
	return max(n, 0), err
}

func (l *loop) dispatch(ev *unix.EpollEvent) {
	if ev.Pad == lnPad {
		if st := l.listeners[ev.Fd]; st != nil && st.paused == 0 {
			l.acceptFrom(st)
		}
		return
	}
	if ev.Pad == 0 {
		if ev.Fd == int32(l.evfd) {
			var b [8]byte
			unix.Read(l.evfd, b[:])
		}
		return
	}
	e := l.ends[ev.Fd]
	if e == nil || e.seq != uint32(ev.Pad) {
		return // stale event of a socket closed in this batch
	}
	if e.connecting && !l.connectEvent(e, ev.Events) {
		return
	}
	if ev.Events&unix.EPOLLERR != 0 && e.p.dirFrom(e).done && e.p.dirTo(e).pending == 0 {
		// Nothing reads or writes this socket now (its peer half-closed
		// and the other side is quiet), so no call would report the error:
		// fetch it, as a reset after a half-close must end the pair.
		if serr, err := unix.GetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && serr != 0 {
			l.fail(e.p, e, "error on", unix.Errno(serr))
			return
		}
	}
	if ev.Events&unix.EPOLLPRI != 0 {
		l.urgentData(e)
	}
	if ev.Events&readEvents != 0 {
		e.readable = true
		if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			e.hup = true
		}
		l.enqueue(e.p.dirFrom(e))
	}
	if ev.Events&writEvents != 0 {
		e.writable = true
		if d := e.p.dirTo(e); d.pending > 0 {
			l.enqueue(d)
		}
	}
}

func (l *loop) enqueue(d *dir) {
	if !d.queued {
		d.queued = true
		l.runq = append(l.runq, d)
	}
}

func (l *loop) runQueue() {
	q := l.runq
	l.runq = l.spare[:0]
	for i, d := range q {
		q[i] = nil
		d.queued = false
		if !d.p.closed {
			l.pump(d)
		}
	}
	l.spare = q[:0]
}

func (l *loop) runTimers() {
	for l.timers.len() > 0 {
		p := l.timers.peek()
		if p.due > l.now {
			return
		}
		if at, why := p.nextDeadline(); at != 0 && at <= l.now {
			if why == reasonDial {
				l.redial(p, connectTimedOut)
			} else {
				l.finish(p, why, core.SideNone, nil)
			}
			continue
		}
		l.schedule(p)
	}
}

// schedule files p in the timer heap at its earliest deadline. Deadlines
// that move later (activity) need no call: the entry is re-filed when it
// comes due.
func (l *loop) schedule(p *pair) {
	at, _ := p.nextDeadline()
	switch {
	case at == 0 && p.hidx >= 0:
		l.timers.remove(p.hidx)
	case at == 0:
	case p.hidx >= 0:
		p.due = at
		l.timers.fix(p.hidx)
	default:
		p.due = at
		l.timers.push(p)
	}
}

// takeInbox registers submitted pairs, applies force-close and reports
// whether the loop must stop.
func (l *loop) takeInbox() bool {
	l.mu.Lock()
	in, ctl := l.inbox, l.ctl
	l.inbox, l.ctl = nil, nil
	forcing, stopping := l.forcing, l.stopping
	l.woken = false
	l.mu.Unlock()
	for _, p := range in {
		l.register(p, forcing)
	}
	// After the new pairs: a Pair.Stop posted right after its Add finds
	// the pair registered.
	for _, f := range ctl {
		f(l)
	}
	if forcing {
		for _, e := range l.ends {
			l.finish(e.p, core.ReasonShutdown, core.SideNone, nil)
		}
	}
	return stopping
}

func (l *loop) register(p *pair, forcing bool) {
	// A new pair's clocks are 0; an adopted one's are offsets (AddSnapshot).
	p.startNS += l.now
	p.lastActive += l.now
	if p.lingerFrom != 0 {
		if p.lingerFrom += l.now; p.lingerFrom == 0 {
			p.lingerFrom = -1
		}
	}
	if forcing {
		l.finish(p, core.ReasonShutdown, core.SideNone, nil)
		return
	}
	for _, e := range [2]*end{&p.a, &p.b} {
		if err := l.addEnd(e); err != nil {
			l.finish(p, core.ReasonError, e.side, err)
			return
		}
	}
	for _, d := range [2]*dir{&p.ab, &p.ba} {
		if d.t != nil && d.t.unopened || d.eof && !d.done { // records read by crypto/tls, an adopted pair's end: no readiness event may come for them
			l.enqueue(d)
		}
	}
	l.schedule(p)
}

// addEnd registers e's socket with the loop's epoll instance.
func (l *loop) addEnd(e *end) error {
	l.seq++
	if l.seq == 0 || int32(l.seq) == lnPad {
		l.seq = 1
	}
	e.seq = l.seq
	ev := unix.EpollEvent{Events: sockEvents, Fd: int32(e.fd), Pad: int32(e.seq)}
	if err := rawEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, e.fd, &ev); err != nil {
		return fmt.Errorf("evloop: register side %s (fd %d) with epoll: %w", e.side, e.fd, err)
	}
	l.ends[int32(e.fd)] = e
	return nil
}

// finish closes both sockets of p, frees what it holds and calls its done
// callback on a new goroutine. It is idempotent.
func (l *loop) finish(p *pair, why core.Reason, side core.Side, err error) {
	if p.closed {
		return
	}
	p.closed = true
	if p.stop != nil {
		// The owner's stop came first: whatever ends the flush (its
		// bound, a peer's error, a shutdown) does not change the reason.
		why, side, err = core.ReasonStopped, core.SideNone, nil
	}
	if p.firstEnd == core.SideNone {
		p.firstEnd = side
	}
	if p.hidx >= 0 {
		l.timers.remove(p.hidx)
	}
	for _, e := range [2]*end{&p.a, &p.b} {
		if e.fd < 0 {
			continue // a B side between connect attempts
		}
		if l.ends[int32(e.fd)] == e {
			delete(l.ends, int32(e.fd))
		}
		// The loop holds the socket's only descriptor (FromConn closed
		// Go's), so close takes it out of the epoll set: no EPOLL_CTL_DEL.
		// Were another descriptor still open on it, its events would carry
		// a sequence number no end has, and dispatch would ignore them.
		rawClose(e.fd) // blocks only under SO_LINGER > 0, which pipegate never sets
	}
	l.dropCarrier(&p.ab)
	l.dropCarrier(&p.ba)
	s := core.Result{
		BytesAToB: p.ab.bytes, BytesBToA: p.ba.bytes,
		Start: p.start, End: time.Now(),
		FirstEnd: p.firstEnd, Reason: why, Err: err,
	}
	done := p.done
	p.done = nil
	if p.inline {
		pairDone(l.g, done, s)
		return
	}
	l.yield = true
	go pairDone(l.g, done, s)
}
