// Package evloop is the event-loop flavour of the pipe engine: a Group of
// epoll loops that own many connection pairs and move bytes between them
// without a goroutine, a buffer or a kernel pipe per idle pair.
//
// Its options and results are the pipe core's own types (package
// pipe/internal/core, which package pipe aliases): core.Options,
// core.Result, core.Side, core.Reason and core.Setup.
//
// Usage:
//
//	g, err := evloop.New(evloop.Config{}) // GOMAXPROCS loops
//	if err != nil {
//		return err
//	}
//	defer g.Close()
//	// *net.TCPConn or *net.UnixConn, all or nothing; on success both Go
//	// conns are closed and their sockets live on in a and b.
//	a, b, err := evloop.TakePair(clientConn, backendConn)
//	if err != nil {
//		return err // both conns untouched: use the goroutine flavour
//	}
//	err = g.Add(a, b, core.Options{IdleTimeout: time.Hour}, func(r core.Result) {
//		log.Printf("%d bytes up, %d down, %s ended first: %s", r.BytesAToB, r.BytesBToA, r.FirstEnd, r.Reason)
//	})
//	if err != nil { // ErrShuttingDown
//		a.Close()
//		b.Close()
//	}
//	// ... at exit:
//	g.Shutdown(ctx) // refuse new pairs, wait, force-close at ctx's deadline
//
// # Design (Linux)
//
// Each loop is one epoll instance and, while it has pairs, one goroutine (a
// loop without pairs holds no goroutine). The epoll descriptor is itself
// registered with Go's netpoller, so a loop with nothing to do is a parked
// goroutine (no thread, no system call in progress); it wakes when the epoll
// has events, when its next timer is due (a read deadline) or when another
// goroutine submits work through an eventfd. Both sockets of a pair are
// registered once, edge-triggered, for EPOLLIN|EPOLLOUT|EPOLLRDHUP (as Go's
// own netpoller does) and EPOLLPRI, which tells of urgent data: that is
// carried in band, a socket made inline (SO_OOBINLINE) only when urgent data
// or a bulk transfer comes (urgent_linux.go says why a short read can still
// end a quiet burst without a call of its own); the loop keeps a readable and
// a writable flag per socket, set by events and cleared when a call returns
// EAGAIN, so no epoll_ctl is needed while data flows. On readiness a quiet
// direction reads into the loop's shared 16 KiB scratch buffer and writes at
// once, keeping only what the destination refused (in a pooled buffer); a
// read that fills the scratch buffer turns the direction to bulk mode, which
// takes a kernel pipe from the loop's pool and moves data with splice(2) (or
// a pooled 64 KiB buffer: Config.NoSplice, or when no pipe can be made) until
// a read comes back small. The pipe goes back to the pool as soon as it is
// drained and the source has nothing more to read; a pipe that still holds
// bytes stays with its direction. When the destination is full the direction
// stops reading its source until an EPOLLOUT edge (backpressure: at most one
// pipe or buffer of bytes in flight per direction). A direction moves at most
// 1 MiB before the loop turns to others. Idle timeout, lifetime and
// half-close linger share one heap entry per pair, re-filed lazily when
// activity moved the deadline. Every call the loop makes is non-blocking, so
// it uses raw system calls.
//
// AddWithPrefix returns a Pair with which the owner can stop the pair at a
// clean point (Pair.Stop): the loop reads nothing more, writes to A what it
// had read from B and a farewell (sealed for TLS), then closes both sides
// (ReasonStopped).
//
// See docs/engine.md for the memory and descriptor arithmetic.
//
// # Ownership of file descriptors
//
// FromConn (and TakePair) duplicates the socket's descriptor and closes the Go conn, so Go's
// netpoller deregisters its copy and never sees the socket again; the
// Endpoint owns the duplicate. After a successful Add the Group owns both
// Endpoints and closes them; after a failed Add they are still the caller's
// (Endpoint.Close). On other systems New and FromConn return ErrUnsupported
// and callers use the goroutine flavour.
package evloop
