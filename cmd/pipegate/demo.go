package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pipegate/pipegate/demo"
)

const demoUsage = `usage: pipegate demo [--plain ADDR] [--tls ADDR] [--pop3 ADDR] [--pop3s ADDR]
                     [--sieve ADDR] [--submission ADDR] [--submissions ADDR]
                     [--log-level LEVEL]

Runs the IMAP, POP3, ManageSieve and submission proxies in front of two
in-memory mail hosts holding a few demo accounts, prints the ports, accounts
and one command per protocol to try, and serves until Ctrl-C. Messages
submitted are delivered to the demo accounts and logged. When every address
is the default, a busy one falls back to a free port.

flags:
`

// demoDrainTimeout bounds the wait for sessions at Ctrl-C.
const demoDrainTimeout = 5 * time.Second

// runDemo is `pipegate demo`.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipegate demo", flag.ContinueOnError)
	var opts demo.Options
	fs.SetOutput(stderr)
	addrs := []struct {
		to   *string
		name string
		def  string
		what string
	}{
		{&opts.PlainAddr, "plain", demo.DefaultPlainAddr, "IMAP with STARTTLS"},
		{&opts.TLSAddr, "tls", demo.DefaultTLSAddr, "IMAP over implicit TLS (imaps)"},
		{&opts.POP3Addr, "pop3", demo.DefaultPOP3Addr, "POP3 with STLS"},
		{&opts.POP3TLSAddr, "pop3s", demo.DefaultPOP3TLSAddr, "POP3 over implicit TLS"},
		{&opts.SieveAddr, "sieve", demo.DefaultSieveAddr, "ManageSieve with STARTTLS"},
		{&opts.SubmissionAddr, "submission", demo.DefaultSubmissionAddr, "submission with STARTTLS"},
		{&opts.SubmissionTLSAddr, "submissions", demo.DefaultSubmissionTLSAddr, "submission over implicit TLS"},
	}
	for _, a := range addrs {
		fs.StringVar(a.to, a.name, a.def, "listen address for "+a.what)
	}
	level := fs.String("log-level", "info", "proxy log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, demoUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	log, err := newLogger(stderr, "text", *level)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate demo: %v\n", err)
		return 2
	}
	// Only the default addresses fall back to free ports: an address the
	// user asked for must be the one used.
	opts.Fallback = true
	for _, a := range addrs {
		if *a.to != a.def {
			opts.Fallback = false
		}
	}
	opts.Logger = log
	d, err := demo.Start(opts)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate demo: %v\n", err)
		return 1
	}
	d.WriteIntro(stdout)
	code := 0
	select {
	case <-ctx.Done():
	case err := <-d.Err():
		log.Error("demo: listener failed", "err", err)
		code = 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), demoDrainTimeout)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		log.Warn("demo: shutdown", "err", err)
	}
	fmt.Fprintln(stdout, "pipegate demo: stopped")
	return code
}
