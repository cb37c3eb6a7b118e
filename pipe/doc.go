// Package pipe joins two connections and moves bytes both ways until both
// directions are done, then closes both and tells the caller how it went.
//
//	// Blocking: returns when both conns are closed.
//	res := pipe.Join(ctx, client, upstream, &pipe.Options{IdleTimeout: 30 * time.Minute})
//	log.Printf("%d bytes up, %d down, %s ended first: %s", res.BytesAToB, res.BytesBToA, res.FirstEnd, res.Reason)
//
//	// In the background, with a callback run once after both are closed:
//	pipe.Go(client, upstream, nil, func(res pipe.Result) { log.Print(res.Reason) })
//
//	// The same with a Handle, to end it later with a goodbye to the client
//	// (after the bytes already read from upstream; Result.Reason "stopped"):
//	h := pipe.Start(client, upstream, nil, nil) // or h, err := eng.Start(client, upstream, nil)
//	h.Stop([]byte("* BYE Moved to another server\r\n"))
//	<-h.Done()
//
//	// Many pipes, counted, drained on shutdown like http.Server:
//	var eng pipe.Engine
//	err := eng.Enter(client, pipe.WithPrefix(upstream, peeked), nil)
//	...
//	err = eng.Shutdown(ctx)
//
// Either side may be a *net.TCPConn, a *net.UnixConn, a *tls.Conn, any other
// net.Conn, or a *PrefixConn carrying bytes already read from one of them
// (they reach the other side first). Between two TCP or Unix stream sockets
// bulk bytes move inside the kernel with splice(2) (Linux).
//
// An Engine (FlavourAuto, the zero value) runs pairs of plain TCP or Unix
// stream sockets, peeked bytes included, on epoll event loops on Linux
// (pipe/internal/evloop): such an idle pair holds no goroutine, buffer or
// kernel pipe, under 1 KiB of memory besides its two sockets. A TLS 1.3
// *tls.Conn whose handshake is done goes to the loops too: they carry on its
// record layer themselves (pipe/internal/tlsrec), so an idle TLS pair holds
// about 3 KiB and no goroutine (Engine.TLSOnGoroutines turns this off). The
// loops start with the first such pair and stop when the last one ends.
// Other pairs (TLS 1.2 among them), Join, Go, FlavourGoroutines and other
// systems use two goroutines per pipe; both flavours behave the same (one
// test suite runs on both). Engine.Stats counts, by reason, the pipes that
// missed the loops (Stats.Fallbacks, AllFallbacks). The loops' TLS record
// layer reads crypto/tls's unexported state and is built only for the Go
// releases it was tested on (Go 1.26); built with any other release, TLS
// pairs run on goroutines and count as FallbackTLSGoRelease.
//
//	eng := &pipe.Engine{Options: opts, Loops: 0 /* GOMAXPROCS */}
//	eng.Enter(client, backend, nil) // *net.TCPConn pair: on the event loops
//
// A goroutine pipe that waits for data pins nothing but its two goroutines
// (and its two sockets): it waits through Go's poller (syscall.RawConn),
// borrows a kernel pipe (splice) or a pooled buffer only once bytes are
// queued, moves what is queued without blocking, and gives it back before
// it parks again. A *tls.Conn is waited on through its socket the same way
// (then the records crypto/tls has buffered are drained into a pooled
// buffer), and a direction idle for a second after TLS work hands its wait
// to a fresh goroutine: 2 KiB of stack rather than the 4 KiB that crypto/tls
// grew the old one to. A net.Conn of unknown type is read with a pooled
// buffer held while the read blocks.
//
// Engine.Listen goes one step further for a plain TCP proxy (Linux): the
// event loops accept the connections themselves, ask an Acceptor how to
// pipe each one (a Setup: upstream addresses, a dial timeout, a prefix
// such as a PROXY header), connect the upstream side without blocking
// (trying the next address when a connect fails or times out) and move the
// bytes, with no goroutine, Go conn or netpoller registration per
// connection. Loops with a listener wait in epoll_wait themselves and keep
// a thread each, as HAProxy's and nginx's workers do. An Acceptor can
// still hand a connection to Go code (Accepted.Conn) for what only Go does.
//
// A running pipe can move to another process without a byte lost (a
// binary upgrade): Handle.Detach or Engine.DetachAll take it out at a clean
// point as two sockets (to pass with SCM_RIGHTS, see package upgrade) and
// an opaque State (byte counts, timers, bytes in flight, the TLS record
// layers of pipes on the loops), and Engine.Adopt carries it on there;
// afterClose then runs once, in the new process, with the totals of both.
//
//	left, err := eng.DetachAll(ctx, func(d *pipe.Detached) error { return send(d) })
//	h, err := newEng.Adopt(received, afterClose) // in the new process
//
// On Linux, pipe/internal/sock holds the system specifics; elsewhere the
// core moves bytes with plain reads and writes.
//
// Urgent data (TCP MSG_OOB, as telnet and FTP's ABOR send it) is carried
// in band: the urgent byte reaches the other side in its place in the
// stream ("hello", urgent "X", "world" arrives as "helloXworld") as an
// ordinary byte; its urgency is not reproduced there. For that the pipe
// sets SO_OOBINLINE on the sockets it reads (Linux): a pipe on goroutines
// on both when it starts, the event loops only once urgent data shows up
// (EPOLLPRI) or a direction turns to bulk transfer, and on Engine.Listen's
// listener once. Under TLS an urgent byte is a byte of a record like any
// other. Urgent bytes read before the pipe took the conn are the caller's.
//
// When one side sends EOF the other side's write half is shut down (TCP FIN;
// close_notify then FIN for TLS) and the other direction keeps flowing;
// Options.HalfCloseLinger bounds how long it may stay silent. A reset or
// error on one side ends both, after bytes already read from the failing
// side reach the other (bounded by a write deadline).
package pipe
