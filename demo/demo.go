// Package demo runs pipegate's mail proxies (IMAP, POP3, ManageSieve and
// submission) in front of two in-memory mail hosts, in one process with
// nothing to install: `pipegate demo`.
//
//	d, err := demo.Start(demo.Options{PlainAddr: demo.DefaultPlainAddr, Fallback: true}) // "" fields: free ports
//	if err != nil {
//		return err
//	}
//	defer d.Shutdown(context.Background())
//	d.WriteIntro(os.Stdout) // ports, accounts, passwords and one command per protocol to try
//	// curl -s --url 'imap://127.0.0.1:1143/INBOX' --user 'alice@a.test:alice-pw' -X 'FETCH 1:* (FLAGS ENVELOPE)'
//
// Host 1 holds the a.test accounts, host 2 the b.test ones; each serves
// IMAP (go-imap's imapmemserver), POP3, ManageSieve (small servers of this
// package) and submission (go-smtp) from the same mailboxes: a message
// submitted to a demo account shows up in its IMAP INBOX and POP3
// maildrop. The route map (no file) sends alice@a.test to host 1 by
// account, every b.test account to host 2 by domain, and anything else to
// host 1 by the default route, for every protocol.
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
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/route/file"
	"github.com/pipegate/pipegate/sieve"
	"github.com/pipegate/pipegate/submission"
	"github.com/pipegate/pipegate/tlsconf"
)

// Default listening addresses; with Options.Fallback a busy one is
// replaced by a free port on the same host. ManageSieve's 4190 is above
// 1024 already, but often taken by a local Dovecot: 14190.
const (
	DefaultPlainAddr         = "127.0.0.1:1143"
	DefaultTLSAddr           = "127.0.0.1:1993"
	DefaultPOP3Addr          = "127.0.0.1:1110"
	DefaultPOP3TLSAddr       = "127.0.0.1:1995"
	DefaultSieveAddr         = "127.0.0.1:14190"
	DefaultSubmissionAddr    = "127.0.0.1:1587"
	DefaultSubmissionTLSAddr = "127.0.0.1:1465"
)

// Options configure a demo. The zero value listens on free loopback ports.
// An address "" is 127.0.0.1:0.
type Options struct {
	PlainAddr         string // IMAP with STARTTLS
	TLSAddr           string // IMAP over implicit TLS (imaps)
	POP3Addr          string // POP3 with STLS
	POP3TLSAddr       string // POP3 over implicit TLS (pop3s)
	SieveAddr         string // ManageSieve with STARTTLS
	SubmissionAddr    string // submission with STARTTLS
	SubmissionTLSAddr string // submission over implicit TLS (submissions)
	// Fallback listens on a free port of the same host when an address is
	// in use.
	Fallback bool
	Accounts []Account    // nil: DefaultAccounts()
	Logger   *slog.Logger // the proxy's log and the deliveries; nil: discarded
}

// HostAddrs are where an in-memory mail host's backends listen.
type HostAddrs struct {
	IMAP, POP3, Sieve, Submission string
}

// Demo is a running demo.
type Demo struct {
	PlainAddr         string // IMAP, plain + STARTTLS
	TLSAddr           string // IMAP, implicit TLS
	POP3Addr          string // POP3, plain + STLS
	POP3TLSAddr       string // POP3, implicit TLS
	SieveAddr         string // ManageSieve, plain + STARTTLS
	SubmissionAddr    string // submission, plain + STARTTLS
	SubmissionTLSAddr string // submission, implicit TLS

	Accounts []Account   // who can log in
	Backends []HostAddrs // the in-memory hosts' backends, host 1 first
	Routes   string      // the route map, in routes-file YAML
	CertPEM  []byte      // the proxies' self-signed certificate
	// PlaintextAuth says whether the plain ports accept logins without
	// STARTTLS (only when they all listen on loopback).
	PlaintextAuth bool

	Proxy      *imap.Server
	POP3       *pop3.Server
	Sieve      *sieve.Server
	Submission *submission.Server

	store    *mailStore
	hosts    []*runningHost
	servers  []demoServer   // the proxies, for Shutdown
	wg       sync.WaitGroup // the proxies' Serve goroutines
	serveErr chan error

	closeOnce sync.Once
	closeErr  error
}

// runningHost is an in-memory mail host's backends.
type runningHost struct {
	imap       *memBackend
	pop3       *pop3Backend
	sieve      *sieveBackend
	submission *submissionBackend
}

// demoServer is what the demo does with a protocol's proxy.
type demoServer interface {
	Serve(l net.Listener, implicitTLS bool) error
	Shutdown(ctx context.Context) error
}

// Start starts the backends and the proxies in front of them.
func Start(opts Options) (_ *Demo, err error) {
	d := &Demo{Accounts: opts.Accounts}
	if d.Accounts == nil {
		d.Accounts = DefaultAccounts()
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	defer func() {
		if err != nil {
			d.Shutdown(context.Background())
		}
	}()
	if d.store, err = newMailStore(d.Accounts); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	for i := range 2 {
		if err := d.startHost(i, logger); err != nil {
			return nil, err
		}
	}
	d.Routes = routeMap(d.Backends)
	routes, err := file.Parse("demo routes", []byte(d.Routes))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}

	cert, err := tlsconf.SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})

	d.Proxy = &imap.Server{}
	d.POP3 = &pop3.Server{}
	d.Sieve = &sieve.Server{}
	d.Submission = &submission.Server{}
	listens := []struct {
		what        string
		addr        string
		to          *string
		srv         demoServer
		implicitTLS bool
	}{
		{"IMAP", opts.PlainAddr, &d.PlainAddr, d.Proxy, false},
		{"IMAP TLS", opts.TLSAddr, &d.TLSAddr, d.Proxy, true},
		{"POP3", opts.POP3Addr, &d.POP3Addr, d.POP3, false},
		{"POP3 TLS", opts.POP3TLSAddr, &d.POP3TLSAddr, d.POP3, true},
		{"ManageSieve", opts.SieveAddr, &d.SieveAddr, d.Sieve, false},
		{"submission", opts.SubmissionAddr, &d.SubmissionAddr, d.Submission, false},
		{"submission TLS", opts.SubmissionTLSAddr, &d.SubmissionTLSAddr, d.Submission, true},
	}
	lns := make([]net.Listener, 0, len(listens))
	d.PlaintextAuth = true
	for _, l := range listens {
		ln, err := listen(l.addr, opts.Fallback)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return nil, fmt.Errorf("demo: %s listener: %w", l.what, err)
		}
		lns = append(lns, ln)
		*l.to = ln.Addr().String()
		if !l.implicitTLS && !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
			d.PlaintextAuth = false
		}
	}

	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	for _, g := range []*gateway.Server{&d.Proxy.Server, &d.POP3.Server, &d.Sieve.Server, &d.Submission.Server} {
		g.Router = routes
		g.TLSConfig = tlsConfig
		g.AllowPlaintextAuth = d.PlaintextAuth
		g.Logger = logger
		g.Hostname = "pipegate-demo"
	}
	d.servers = []demoServer{d.Proxy, d.POP3, d.Sieve, d.Submission}
	d.serveErr = make(chan error, len(listens))
	d.wg.Add(len(listens))
	for i, l := range listens {
		go serveDemo(d, l.srv, lns[i], l.implicitTLS)
	}
	return d, nil
}

// startHost starts host i's backends over the accounts it holds.
func (d *Demo) startHost(i int, logger *slog.Logger) error {
	h := &host{name: fmt.Sprintf("backend %d", i+1), boxes: map[string]*mailbox{}, store: d.store}
	for _, a := range d.Accounts {
		if a.Backend == i {
			h.boxes[strings.ToLower(a.User)] = d.store.boxes[strings.ToLower(a.User)]
		}
	}
	rh := &runningHost{}
	d.hosts = append(d.hosts, rh)
	var err error
	if rh.imap, err = startMemBackend(h, silentLogger()); err != nil {
		return err
	}
	if rh.pop3, err = startPOP3Backend(h); err != nil {
		return err
	}
	if rh.sieve, err = startSieveBackend(h); err != nil {
		return err
	}
	if rh.submission, err = startSubmissionBackend(h, logger); err != nil {
		return err
	}
	d.Backends = append(d.Backends, HostAddrs{
		IMAP: rh.imap.addr(), POP3: rh.pop3.addr(), Sieve: rh.sieve.addr(), Submission: rh.submission.addr(),
	})
	return nil
}

// routeMap is the demo's routes file: one backend per protocol on each
// host. The in-memory backends take no XCLIENT: client_addr=none.
func routeMap(hosts []HostAddrs) string {
	list := func(h HostAddrs) string {
		return fmt.Sprintf(`
      - imap://%s
      - pop3://%s?client_addr=none
      - sieve://%s?client_addr=none
      - submission://%s?client_addr=none`, h.IMAP, h.POP3, h.Sieve, h.Submission)
	}
	return fmt.Sprintf(`routes:
  - account: alice@a.test
    backends:%[1]s
  - domain: b.test
    backends:%[2]s
default:%[3]s
`, list(hosts[0]), list(hosts[1]), strings.ReplaceAll(list(hosts[0]), "\n    ", "\n"))
}

// serveDemo is the goroutine serving one of the proxies' listeners.
func serveDemo(d *Demo, srv demoServer, l net.Listener, implicitTLS bool) {
	defer d.wg.Done()
	if err := srv.Serve(l, implicitTLS); !errors.Is(err, gateway.ErrServerClosed) {
		d.serveErr <- fmt.Errorf("demo: serve %s: %w", l.Addr(), err)
	}
}

// Err receives an error when a listener fails (nothing on Shutdown).
func (d *Demo) Err() <-chan error { return d.serveErr }

// Delivered is the number of messages the submission backends delivered
// (one per recipient).
func (d *Demo) Delivered() int64 { return d.store.delivered.Load() }

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

// Shutdown stops the proxies (draining until ctx ends), then the
// backends.
func (d *Demo) Shutdown(ctx context.Context) error {
	d.closeOnce.Do(func() {
		// The proxies drain at once, each until ctx ends.
		errs := make([]error, len(d.servers))
		var wg sync.WaitGroup
		for i, srv := range d.servers {
			wg.Add(1)
			go shutdownDemoServer(&wg, ctx, srv, &errs[i])
		}
		wg.Wait()
		d.wg.Wait()
		for i, h := range d.hosts {
			errs = append(errs, h.close(i+1))
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// shutdownDemoServer is the goroutine draining one proxy.
func shutdownDemoServer(wg *sync.WaitGroup, ctx context.Context, srv demoServer, err *error) {
	defer wg.Done()
	if e := srv.Shutdown(ctx); e != nil {
		*err = fmt.Errorf("demo: proxy: %w", e)
	}
}

// close stops the backends that started.
func (h *runningHost) close(n int) error {
	var errs []error
	add := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("demo: backend %d %s: %w", n, what, err))
		}
	}
	if h.imap != nil {
		add("IMAP", h.imap.close())
	}
	if h.pop3 != nil {
		add("POP3", h.pop3.close())
	}
	if h.sieve != nil {
		add("ManageSieve", h.sieve.close())
	}
	if h.submission != nil {
		add("submission", h.submission.close())
	}
	return errors.Join(errs...)
}

// CertPool holds the proxies' self-signed certificate, for clients that
// verify it.
func (d *Demo) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(d.CertPEM)
	return p
}
