// Package process runs the binary upgrades of a pipegate daemon command
// (forward, mail, imap) on top of the hand-over channel of package
// upgrade: on SIGUSR2 the running process starts its binary anew with
// --upgrade-from SOCKET, hands it the listening sockets, waits until it
// serves (or rolls back: kills it and keeps serving), then hands over the
// established pairs that can move (Pairs) and drains. The new process
// takes the sockets over before it loads its config, and tells the old
// one that it serves, or why it cannot. Both keep the pid file
// (Options.PIDFile) and tell systemd (sd_notify: READY, MAINPID,
// STOPPING, STATUS).
//
// A daemon command wires an Upgrader into its select loop:
//
//	up, err := process.New("forward", args, &opts, stdout, stderr) // opts from flags
//	defer up.Close()
//	if err := up.TakeOver(ctx); err != nil { ... }      // --upgrade-from: the sockets
//	cfg, err := load()
//	if err != nil { up.Failed(err); ... }                // the old process keeps serving
//	up.SetLog(log)
//	d.Listen = up.Listen("forward", forward.Listen)     // received, or opened and kept
//	up.SetPairs(pairs)                                   // optional: move established pairs
//	defer up.Wait()
//	for {
//		select {
//		case <-serving:                                   // pid file, Ready, sd_notify
//			if err := up.Serving(ctx); err != nil { stop(err) } // this process must not serve
//		case <-usr2:       up.Trigger(ctx)                // start an attempt
//		case r := <-up.Results():
//			if cause, handedOver := up.Settle(r); handedOver { stop(cause) }
//		case <-ctx.Done(): up.Stopping()                  // draining
//		}
//	}
//
// Request is the other end of the pid file: `pipegate upgrade` signals the
// daemon and waits for the outcome. See docs/upgrade.md.
package process
