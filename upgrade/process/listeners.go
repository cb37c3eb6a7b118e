package process

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// heldListeners keeps what a binary upgrade hands over: a duplicate of
// every listening socket the daemon opened through hook, by name ("forward
// ADDR", "listen ADDR", "metrics ADDR"; ADDR as configured). The
// duplicates matter because the daemon may no longer have a descriptor of
// its own to give: the event loops take a TCP listener's socket out of its
// Go listener. In a process started by an upgrade it also keeps the
// sockets received until the daemon asks for them.
type heldListeners struct {
	log *slog.Logger

	mu        sync.Mutex
	held      map[string]*heldListener
	inherited map[string]net.Listener // received, not yet taken by the daemon
	quiet     []*quietListener        // to silence once handed over
	orphans   []string                // paths of Unix sockets received and not taken: removed in owned
}

// heldListener is one listening socket of the daemon.
type heldListener struct {
	file *os.File          // our duplicate of the socket
	unix *net.UnixListener // the daemon's, when a Unix socket: keep its path at hand-over
}

func newHeldListeners(log *slog.Logger) *heldListeners {
	return &heldListeners{log: log, held: map[string]*heldListener{}, inherited: map[string]net.Listener{}}
}

// inherit takes the listeners received from the old process.
func (h *heldListeners) inherit(ls map[string]net.Listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, l := range ls {
		h.inherited[name] = l
	}
}

// hook returns the daemon's Listen hook for listeners of kind: it gives
// the socket received under "kind addr" when there is one, else opens addr
// with open, and keeps a duplicate for the next upgrade.
func (h *heldListeners) hook(kind string, open func(addr string) (net.Listener, error)) func(string) (net.Listener, error) {
	return func(addr string) (net.Listener, error) {
		name := kind + " " + addr
		h.mu.Lock()
		ln := h.inherited[name]
		delete(h.inherited, name)
		h.mu.Unlock()
		if ln != nil {
			h.log.Info("upgrade: serving on a socket handed over", "listener", name)
		} else {
			var err error
			if ln, err = open(addr); err != nil {
				return nil, err
			}
		}
		if err := h.hold(name, ln); err != nil {
			ln.Close()
			return nil, err
		}
		return ln, nil
	}
}

// quietHook is hook for a listener that the daemon closes only at the end
// of its drain (the metrics endpoint): once handed over, it stops
// accepting here at once, so that /healthz and /metrics are the new
// process's, not a draining one's.
func (h *heldListeners) quietHook(kind string, open func(addr string) (net.Listener, error)) func(string) (net.Listener, error) {
	hook := h.hook(kind, open)
	return func(addr string) (net.Listener, error) {
		ln, err := hook(addr)
		if err != nil {
			return nil, err
		}
		q := &quietListener{Listener: ln, quiet: make(chan struct{}), closed: make(chan struct{})}
		h.mu.Lock()
		h.quiet = append(h.quiet, q)
		h.mu.Unlock()
		return q, nil
	}
}

// hold keeps a duplicate of ln's socket under name; a second listener of
// one name (two on port 0) is not handed over.
func (h *heldListeners) hold(name string, ln net.Listener) error {
	fl, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil // not TCP or Unix: nothing to hand over
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held[name] != nil {
		return nil
	}
	f, err := fl.File()
	if err != nil {
		return fmt.Errorf("%s: keeping the socket for upgrades: %w", name, err)
	}
	hl := &heldListener{file: f}
	hl.unix, _ = ln.(*net.UnixListener)
	h.held[name] = hl
	return nil
}

// retain closes the duplicates of the sockets not named in live (the
// daemon closed them at a reload), so that their ports are free again.
func (h *heldListeners) retain(live []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, hl := range h.held {
		if !slices.Contains(live, name) {
			hl.file.Close()
			delete(h.held, name)
		}
	}
}

// closeInherited closes the sockets received that the new configuration
// does not listen on any more.
func (h *heldListeners) closeInherited() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, l := range h.inherited {
		h.log.Info("upgrade: closing a socket handed over that the config no longer has", "listener", name)
		if ul, ok := l.(*net.UnixListener); ok {
			if path := ul.Addr().String(); path != "" && path[0] != '@' {
				h.orphans = append(h.orphans, path)
			}
		}
		l.Close()
		delete(h.inherited, name)
	}
}

// owned is called once the old process knows that this one serves: the
// paths of the Unix sockets received are this process's now. Those the
// daemon took are removed when it closes them (at exit, or when a reload
// drops them), as the sockets it opened itself; those it did not take are
// removed now. Before, a failed upgrade leaves them to the old process.
func (h *heldListeners) owned() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, hl := range h.held {
		if hl.unix != nil {
			hl.unix.SetUnlinkOnClose(true)
		}
	}
	for _, path := range h.orphans {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			h.log.Warn("upgrade: removing the path of a socket handed over that the config no longer has", "path", path, "err", err)
		}
	}
	h.orphans = nil
}

// snapshot returns what to hand over: a listener per held socket (whose
// File is a fresh duplicate, as upgrade.SendListeners wants) and the names.
func (h *heldListeners) snapshot() ([]net.Listener, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.held))
	for name := range h.held {
		names = append(names, name)
	}
	slices.Sort(names)
	ls := make([]net.Listener, len(names))
	for i, name := range names {
		ls[i] = fileListener{h.held[name].file}
	}
	return ls, names
}

// handedOver is called once the new process serves: the Unix sockets'
// paths are the new process's now (closing ours must not remove them), and
// the duplicates are closed (the new process has its own).
func (h *heldListeners) handedOver() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, hl := range h.held {
		if hl.unix != nil {
			hl.unix.SetUnlinkOnClose(false)
		}
		hl.file.Close()
		delete(h.held, name)
	}
	for _, q := range h.quiet {
		q.silence()
	}
}

// close closes every duplicate and every socket received and not taken.
func (h *heldListeners) close() {
	h.retain(nil)
	h.closeInherited()
}

// fileListener gives a held socket to upgrade.SendListeners, which only
// calls File.
type fileListener struct{ f *os.File }

func (l fileListener) Accept() (net.Conn, error) { return nil, syscall.EINVAL }
func (l fileListener) Close() error              { return nil }
func (l fileListener) Addr() net.Addr            { return nil }

// File returns a new duplicate of the socket (close-on-exec).
func (l fileListener) File() (*os.File, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("duplicating %s: %w", l.f.Name(), derr)
	}
	return os.NewFile(uintptr(nfd), l.f.Name()), nil
}

// quietListener is a listener that can stop accepting before its server
// closes it: Accept then waits for Close, and its server sees no error.
type quietListener struct {
	net.Listener
	quiet       chan struct{} // closed by silence
	closed      chan struct{} // closed by Close
	qonce, once sync.Once
}

func (l *quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		select {
		case <-l.quiet:
			<-l.closed
			return nil, net.ErrClosed
		default:
		}
	}
	return c, err
}

// silence closes the socket here; Accept waits for Close.
func (l *quietListener) silence() {
	l.qonce.Do(func() {
		close(l.quiet)
		l.Listener.Close()
	})
}

func (l *quietListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
	})
	select {
	case <-l.quiet:
		return nil // closed already by silence
	default:
		return err
	}
}
