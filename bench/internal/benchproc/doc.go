// Package benchproc holds what the whole-process benches under bench/
// share: a server started in its own process group with its log file and
// awaited until it listens (or exits), its stop, a process group's RSS
// and CPU time read from /proc, the measuring loops (login rates in
// rotating rounds, RSS growth per idle session), medians with their
// spread, and the command-line frame (the common flags, usage errors,
// exit status).
//
// A bench's main, in short:
//
//	func main() { os.Exit(benchproc.Run("xbench", run)) }
//
//	func run() error {
//		var f benchproc.Flags
//		f.Register(flag.CommandLine, 50) // --pipegate, --logins 50, --rounds 10
//		flag.Parse()
//		if err := f.Check("bench/x.sh"); err != nil {
//			return err // a UsageError: Run exits with status 2
//		}
//		addr, err := freeport.Addr()
//		if err != nil {
//			return err
//		}
//		cfg := writeConfig(addr) // the bench's own
//		p, err := benchproc.Start(context.Background(), benchproc.Server{
//			Name: "pipegate", Argv: []string{f.Pipegate, "imap", "--config", cfg},
//			Log: "/tmp/x/pipegate.log", Listen: []string{addr},
//		})
//		if err != nil {
//			return err // says why, with the log's content
//		}
//		defer p.Stop()
//		rate, err := benchproc.LoginRate(f.Logins, func() (io.Closer, error) { return login(addr) })
//		if err != nil {
//			return err
//		}
//		kib, err := benchproc.IdleRSS(p.Pgid(), 400, func() (io.Closer, error) { return login(addr) })
//		...
//	}
//
// Nothing here is package state: every Process is its own, and the
// listening ports come from internal/freeport.
package benchproc
