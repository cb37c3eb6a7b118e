package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/pipegate/pipegate/maild"
	"github.com/pipegate/pipegate/upgrade/process"
)

const mailUsage = `usage: pipegate mail --config FILE

Runs the mail gateway described by FILE (see docs/mail.md): each listener
serves one protocol (imap, pop3, sieve, submission).
SIGHUP reloads routes and certificates; SIGTERM or SIGINT drains and exits;
SIGUSR2 (or pipegate upgrade --pid-file F) starts the binary anew on the same
sockets and drains here once it serves (docs/upgrade.md).
`

const imapUsage = `usage: pipegate imap --config FILE

Runs the IMAP reverse proxy described by FILE (see docs/imap.md): the mail
gateway with IMAP listeners only (pipegate mail serves the other protocols).
SIGHUP reloads routes and certificates; SIGTERM or SIGINT drains and exits;
SIGUSR2 (or pipegate upgrade --pid-file F) starts the binary anew on the same
sockets and drains here once it serves (docs/upgrade.md).
`

// runMail is `pipegate mail`: exit code 0 after a clean drain, 1 on a
// runtime failure, 2 on bad usage or config.
func runMail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runMailCommand(ctx, maild.CommandMail, mailUsage, args, stdout, stderr)
}

// runIMAP is `pipegate imap`: `pipegate mail` with IMAP listeners only.
func runIMAP(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runMailCommand(ctx, maild.CommandIMAP, imapUsage, args, stdout, stderr)
}

func runMailCommand(ctx context.Context, command, usage string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipegate "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nflags:\n")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "config `file` (YAML)")
	var upOpts process.Options
	registerUpgradeFlags(fs, &upOpts)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "pipegate %s: unexpected argument %q (flags start with --)\n", command, fs.Arg(0))
		fs.Usage()
		return 2
	case *configPath == "":
		fmt.Fprintf(stderr, "pipegate %s: flag --config: missing\n", command)
		fs.Usage()
		return 2
	}
	p, failed := startDaemonProcess(ctx, command, args, &upOpts, stdout, stderr)
	if p == nil {
		return failed
	}
	defer p.close()
	up, hup, usr2 := p.up, p.hup, p.usr2

	s, err := maild.Load(*configPath, command, mailProtocols)
	if err != nil {
		up.Failed(err)
		fmt.Fprintf(stderr, "pipegate %s: %v\n", command, err)
		return 2
	}
	log, err := newLogger(stderr, s.LogFormat, s.LogLevel)
	if err != nil { // checked by maild.Load already
		up.Failed(err)
		fmt.Fprintf(stderr, "pipegate %s: %s: log: %v\n", command, s.File, err)
		return 2
	}
	up.SetLog(log)
	d, err := maild.New(s, log)
	if err != nil {
		up.Failed(err)
		fmt.Fprintf(stderr, "pipegate %s: %v\n", command, err)
		return 2
	}
	defer d.Close()
	d.Listen = up.Listen("listen", listenTCP)
	d.TakingOver = upOpts.From != ""
	up.SetPairs(mailPairs{d: d, log: log, command: command})
	d.ListenMetrics = up.ListenQuiet("metrics", listenTCP)
	serving := make(chan struct{})
	d.OnServing = func() { close(serving) }

	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	defer up.Wait() // before up.Close: an attempt still running rolls back
	done := make(chan error, 1)
	go runMailDaemon(ctx, d, done)
	stopping := ctx.Done()
	code := 0
	for {
		select {
		case <-hup:
			if ctx.Err() != nil { // a drain (or the hand-over's) is under way
				log.Info(command + ": SIGHUP: draining; no reload")
				continue
			}
			log.Info(command + ": reloading (SIGHUP)")
			if err := d.Reload(); err != nil {
				log.Error(command+": reload failed, keeping the previous state of what failed", "config", s.File, "err", err)
			}
		case <-usr2:
			up.Trigger(ctx)
		case <-stopping:
			stopping = nil
			up.Stopping()
		case r := <-up.Results():
			if cause, handedOver := up.Settle(r); handedOver {
				log.Info(command+": draining", "cause", cause.Error())
				stop(cause)
			}
		case <-serving:
			serving = nil
			if err := up.Serving(ctx); err != nil {
				log.Error(command+": upgrade: stopping", "err", err)
				stop(err)
				code = 1
			}
		case err := <-done: // Run logged it
			if err != nil {
				up.Failed(err)
				return 1
			}
			return code
		}
	}
}

// runMailDaemon is the goroutine running the mail daemon until ctx ends.
func runMailDaemon(ctx context.Context, d *maild.Daemon, done chan<- error) {
	done <- d.Run(ctx)
}

// checkMailConfigKind validates a mail (or imap) config file and the
// files it names for `pipegate check-config`, and says which command runs
// it: "imap" when every listener is IMAP's (both do), else "mail".
func checkMailConfigKind(path string) (string, error) {
	return maild.Check(path, mailProtocols)
}
