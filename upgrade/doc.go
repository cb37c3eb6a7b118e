// Package upgrade is the hand-over channel for replacing a running
// pipegate binary without refusing a connection: the old process passes
// its listening sockets to the new one over a private Unix socket, waits
// until the new one says it serves, and only then stops accepting.
//
//	// Old process (on SIGUSR2, say), after starting the new binary:
//	srv, err := upgrade.Listen("/run/pipegate/upgrade.sock") // each err: roll back
//	c, err := srv.Accept(ctx)                  // the new process, same uid only
//	err = upgrade.SendListeners(ctx, c, lns, names)
//	if err := c.WaitReady(ctx); err != nil {    // "failed", timeout or gone
//		log.Printf("upgrade rolled back: %v", err) // keep serving on lns
//	} else {
//		// stop accepting on lns (close them), drain, exit
//	}
//
//	// New process:
//	c, err := upgrade.Dial(ctx, "/run/pipegate/upgrade.sock") // each err: exit
//	lns, err := upgrade.RecvListeners(ctx, c) // map name -> net.Listener
//	// load config, serve on lns[...] instead of listening anew
//	if err != nil { c.Failed(ctx, err.Error()) } else { c.Ready(ctx) }
//
// The channel is a Unix stream socket in a directory private to the
// daemon's user (0700; the socket itself 0600). Each side checks its peer
// with SO_PEERCRED: a process of another uid is refused with a PeerError
// naming its uid (and told why before the socket closes). Messages are
// frames of a 12-byte header ("PGUP", kind length, file count, metadata
// length), a kind, metadata (JSON or binary, at most MaxMeta bytes) and up
// to MaxFiles file descriptors passed with SCM_RIGHTS. Received
// descriptors are close-on-exec; a frame that breaks a bound, or whose
// descriptors were truncated by the kernel (MSG_CTRUNC), is an error and
// every descriptor that came with it is closed. After an error from Send
// or Recv the Conn is out of step and only Close is useful.
//
// In an upgrade, listeners are handed over first, so that the kernel
// keeps queueing new connections on the very same sockets while the
// binaries change places (no "connection refused"). Once the new process
// is ready, the established pipes follow: taken out at a clean point by
// pipe.Engine.DetachAll and sent with Outbox.Send together with their
// metadata (maild.Daemon.HandOver, forward.Daemon.HandOverConn); those
// that cannot move drain in the old process. The new process's RecvEach
// confirms each before it runs it, and the old process keeps copies of
// what it sent until then: Outbox.Finish gives back what the new process
// did not take (it died, or did not confirm in time), for the old one to
// carry on, and no pipe ever runs in both. Package upgrade/process runs
// the whole sequence (starting the new binary, readiness, rollback,
// sd_notify).
//
// The package works on Linux; elsewhere Listen and Dial return an error.
package upgrade
