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

const demoUsage = `usage: pipegate demo [--plain ADDR] [--tls ADDR] [--log-level LEVEL]

Runs the IMAP proxy in front of two in-memory IMAP servers holding a few
demo accounts, prints the ports, accounts and a curl command to try, and
serves until Ctrl-C. The default addresses fall back to free ports when busy.

flags:
`

// demoDrainTimeout bounds the wait for sessions at Ctrl-C.
const demoDrainTimeout = 5 * time.Second

// runDemo is `pipegate demo`.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipegate demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plain := fs.String("plain", demo.DefaultPlainAddr, "listen address for plain IMAP with STARTTLS")
	tlsAddr := fs.String("tls", demo.DefaultTLSAddr, "listen address for implicit TLS (imaps)")
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
	fallback := *plain == demo.DefaultPlainAddr && *tlsAddr == demo.DefaultTLSAddr
	d, err := demo.Start(demo.Options{PlainAddr: *plain, TLSAddr: *tlsAddr, Fallback: fallback, Logger: log})
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
