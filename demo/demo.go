// Package demo runs pipegate's IMAP proxy in front of two in-memory IMAP
// servers, in one process with nothing to install: `pipegate demo`.
//
//	d, err := demo.Start(demo.Options{PlainAddr: "127.0.0.1:1143", TLSAddr: "127.0.0.1:1993", Fallback: true})
//	if err != nil {
//		return err
//	}
//	defer d.Shutdown(context.Background())
//	d.WriteIntro(os.Stdout) // ports, accounts, passwords and a curl line to try
//	// curl -s --url 'imap://127.0.0.1:1143/INBOX' --user 'alice@a.test:alice-pw' -X 'FETCH 1:* (FLAGS ENVELOPE)'
//
// Backend 1 holds the a.test accounts, backend 2 the b.test ones. The
// route map (no file) sends alice@a.test to backend 1 by account, every
// b.test account to backend 2 by domain, and anything else to backend 1 by
// the default route.
package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/route/file"
	"github.com/pipegate/pipegate/tlsconf"
)

// Default listening addresses; with Options.Fallback a busy one is
// replaced by a free port on the same host.
const (
	DefaultPlainAddr = "127.0.0.1:1143"
	DefaultTLSAddr   = "127.0.0.1:1993"
)

// Options configure a demo. The zero value listens on free loopback ports.
type Options struct {
	PlainAddr string // plain IMAP with STARTTLS; "": 127.0.0.1:0
	TLSAddr   string // implicit TLS (imaps); "": 127.0.0.1:0
	// Fallback listens on a free port of the same host when an address is
	// in use.
	Fallback bool
	Accounts []Account    // nil: DefaultAccounts()
	Logger   *slog.Logger // the proxy's log; nil: discarded
}

// Demo is a running demo.
type Demo struct {
	PlainAddr string    // where the proxy listens for plain IMAP + STARTTLS
	TLSAddr   string    // where the proxy listens for implicit TLS
	Accounts  []Account // who can log in
	Backends  []string  // the in-memory servers' addresses
	Routes    string    // the route map, in routes-file YAML
	CertPEM   []byte    // the proxy's self-signed certificate
	// PlaintextAuth says whether the plain port accepts logins without
	// STARTTLS (only when it listens on loopback).
	PlaintextAuth bool
	Proxy         *imap.Server

	backends []*memBackend
	wg       sync.WaitGroup // the proxy's Serve goroutines
	serveErr chan error

	closeOnce sync.Once
	closeErr  error
}

// Start starts the backends and the proxy in front of them.
func Start(opts Options) (_ *Demo, err error) {
	d := &Demo{Accounts: opts.Accounts, serveErr: make(chan error, 2)}
	if d.Accounts == nil {
		d.Accounts = DefaultAccounts()
	}
	defer func() {
		if err != nil {
			d.Shutdown(context.Background())
		}
	}()
	for i := range 2 {
		var mine []Account
		for _, a := range d.Accounts {
			if a.Backend == i {
				mine = append(mine, a)
			}
		}
		b, err := startMemBackend(fmt.Sprintf("backend %d", i+1), mine, silentLogger())
		if err != nil {
			return nil, err
		}
		d.backends = append(d.backends, b)
		d.Backends = append(d.Backends, b.addr())
	}
	d.Routes = fmt.Sprintf(`routes:
  - account: alice@a.test
    backend: imap://%[1]s
  - domain: b.test
    backend: imap://%[2]s
default: imap://%[1]s
`, d.Backends[0], d.Backends[1])
	routes, err := file.Parse("demo routes", []byte(d.Routes))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}

	cert, err := tlsconf.SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})

	plainLn, err := listen(opts.PlainAddr, opts.Fallback)
	if err != nil {
		return nil, fmt.Errorf("demo: plain listener: %w", err)
	}
	tlsLn, err := listen(opts.TLSAddr, opts.Fallback)
	if err != nil {
		plainLn.Close()
		return nil, fmt.Errorf("demo: TLS listener: %w", err)
	}
	d.PlainAddr, d.TLSAddr = plainLn.Addr().String(), tlsLn.Addr().String()
	d.PlaintextAuth = plainLn.Addr().(*net.TCPAddr).IP.IsLoopback()

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d.Proxy = &imap.Server{
		Server: gateway.Server{
			Router:             routes,
			TLSConfig:          &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			AllowPlaintextAuth: d.PlaintextAuth,
			Logger:             logger,
			Hostname:           "pipegate-demo",
		},
	}
	d.wg.Add(2)
	go serveDemo(d, plainLn, false)
	go serveDemo(d, tlsLn, true)
	return d, nil
}

// serveDemo is the goroutine serving one of the proxy's listeners.
func serveDemo(d *Demo, l net.Listener, implicitTLS bool) {
	defer d.wg.Done()
	if err := d.Proxy.Serve(l, implicitTLS); !errors.Is(err, imap.ErrServerClosed) {
		d.serveErr <- fmt.Errorf("demo: serve %s: %w", l.Addr(), err)
	}
}

// Err receives an error when a listener fails (nothing on Shutdown).
func (d *Demo) Err() <-chan error { return d.serveErr }

// listen listens on addr ("" = a free loopback port); with fallback, on a
// free port of the same host when addr is in use.
func listen(addr string, fallback bool) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err == nil || !fallback || !errors.Is(err, syscall.EADDRINUSE) {
		return l, err
	}
	host, _, serr := net.SplitHostPort(addr)
	if serr != nil {
		return nil, err
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// Shutdown stops the proxy (draining until ctx ends), then the backends.
func (d *Demo) Shutdown(ctx context.Context) error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.Proxy != nil {
			if err := d.Proxy.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("demo: proxy: %w", err))
			}
			d.wg.Wait()
		}
		for i, b := range d.backends {
			if err := b.close(); err != nil {
				errs = append(errs, fmt.Errorf("demo: backend %d: %w", i+1, err))
			}
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// CertPool holds the proxy's self-signed certificate, for clients that
// verify it.
func (d *Demo) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(d.CertPEM)
	return p
}

// CurlCommand is a shell command that lists a's INBOX through the proxy:
// on the plain port when it accepts plaintext logins, else over imaps
// with -k (the certificate is self-signed).
func (d *Demo) CurlCommand(a Account) string {
	fetch := "FETCH 1:* (FLAGS ENVELOPE)"
	if d.PlaintextAuth {
		return fmt.Sprintf("curl -s --url %s --user %s -X %s",
			shellQuote("imap://"+d.PlainAddr+"/INBOX"), shellQuote(a.User+":"+a.Password), shellQuote(fetch))
	}
	return d.CurlTLSCommand(a)
}

// CurlTLSCommand is CurlCommand over the implicit-TLS port.
func (d *Demo) CurlTLSCommand(a Account) string {
	fetch := "FETCH 1:* (FLAGS ENVELOPE)"
	return fmt.Sprintf("curl -sk --url %s --user %s -X %s",
		shellQuote("imaps://"+d.TLSAddr+"/INBOX"), shellQuote(a.User+":"+a.Password), shellQuote(fetch))
}

// WriteIntro prints what runs where, the accounts and commands to try.
func (d *Demo) WriteIntro(w io.Writer) {
	fmt.Fprintf(w, "pipegate demo: IMAP proxy in front of two in-memory IMAP servers\n\n")
	auth := "plaintext login allowed (loopback demo)"
	if !d.PlaintextAuth {
		auth = "login only after STARTTLS"
	}
	fmt.Fprintf(w, "  proxy, plain + STARTTLS  %s  (%s)\n", d.PlainAddr, auth)
	fmt.Fprintf(w, "  proxy, implicit TLS      %s  (self-signed certificate)\n", d.TLSAddr)
	for i, b := range d.Backends {
		fmt.Fprintf(w, "  backend %d (in memory)    %s\n", i+1, b)
	}
	fmt.Fprintf(w, "\naccounts:\n")
	for _, a := range d.Accounts {
		plural := "s"
		if len(a.Subjects) == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "  %-14s password %-10s on backend %d, %d message%s\n", a.User, a.Password, a.Backend+1, len(a.Subjects), plural)
	}
	fmt.Fprintf(w, "\nroute map (routes-file YAML, held in memory):\n")
	for _, line := range strings.Split(strings.TrimSpace(d.Routes), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	if len(d.Accounts) > 0 {
		fmt.Fprintf(w, "\nlist %s's INBOX through the proxy (run in another shell):\n", d.Accounts[0].User)
		fmt.Fprintf(w, "%s\n", d.CurlCommand(d.Accounts[0]))
		fmt.Fprintf(w, "\nthe same over implicit TLS, or another account:\n")
		fmt.Fprintf(w, "  %s\n", d.CurlTLSCommand(d.Accounts[0]))
		last := d.Accounts[len(d.Accounts)-1]
		fmt.Fprintf(w, "  %s\n", d.CurlCommand(last))
	}
	fmt.Fprintf(w, "\nCtrl-C stops the demo.\n")
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
