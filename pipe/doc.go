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
//	// Many pipes, counted, drained on shutdown like http.Server:
//	var eng pipe.Engine
//	err := eng.Enter(client, pipe.WithPrefix(upstream, peeked), nil)
//	...
//	err = eng.Shutdown(ctx)
//
// Either side may be a *net.TCPConn, a *net.UnixConn, a *tls.Conn, any other
// net.Conn, or a *PrefixConn carrying bytes already read from one of them
// (they reach the other side first). Between two TCP or Unix stream sockets
// bytes move inside the kernel with splice(2) (Linux).
//
// A pipe that waits for data pins nothing but its goroutines: it waits for
// readability through Go's poller without reading, and only then borrows a
// kernel pipe (splice) or a pooled buffer, moves what is queued, and gives it
// back. A *tls.Conn is waited on through its socket the same way; a net.Conn
// of unknown type is read with a pooled buffer held while the read blocks.
//
// When one side sends EOF the other side's write half is shut down (TCP FIN;
// close_notify then FIN for TLS) and the other direction keeps flowing;
// Options.HalfCloseLinger bounds how long it may stay silent. A reset or
// error on one side ends both, after bytes already read from the failing
// side reach the other (bounded by a write deadline).
package pipe
