package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/tlsconf"
)

// Backend is a connection to one backend of a route during login: dialed,
// past its PROXY header (route.ClientAddrProxy) and its implicit TLS, with
// a reader and a writer for the protocol's side of the login. The
// session's context (Shutdown's deadline) and BackendTimeout interrupt it.
type Backend struct {
	Route route.Backend

	ctx     context.Context
	conn    net.Conn // raw, or TLS over it
	br      *bufio.Reader
	bw      *bufio.Writer
	isTLS   bool
	tlsBase *tls.Config // BackendTLS when the dial began
	stop    func() bool // ends the context watch
	lease   Lease       // a pool member's: ended with the connection
	// pool and poolUser: the pool:NAME the member was assigned from, and
	// the user the lease holds (a hand-over to another process renews it).
	pool, poolUser string
}

// backendDeadline bounds one exchange with a route source or a backend:
// BackendTimeout from now, and the login timeout them all.
func (ss *Session) backendDeadline() time.Time {
	deadline := time.Now().Add(orDuration(ss.srv.BackendTimeout, DefaultBackendTimeout))
	if ss.deadline.Before(deadline) {
		deadline = ss.deadline
	}
	return deadline
}

// dial connects to b and readies it for the protocol.
func (ss *Session) dial(b route.Backend) (*Backend, error) {
	dyn := ss.srv.current()
	c, err := dialBackend(ss.ctx, b, orDuration(ss.srv.DialTimeout, DefaultDialTimeout), ss.backendDeadline(),
		dyn.backendTLS, ss.client, ss.local)
	if err != nil {
		return nil, err
	}
	be := &Backend{Route: b, ctx: ss.ctx, conn: c, isTLS: b.TLS == route.TLSImplicit, tlsBase: dyn.backendTLS}
	be.br = ss.bufs.reader(c)
	be.bw = ss.bufs.writer(c)
	// Shutdown's deadline (or the caller's ctx) interrupts the dialogue.
	be.stop = context.AfterFunc(ss.ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return be, nil
}

// Reader reads from the backend; what it buffered past the login goes to
// the client at the hand-over.
func (b *Backend) Reader() *bufio.Reader { return b.br }

// Writer buffers what goes to the backend until its Flush.
func (b *Backend) Writer() *bufio.Writer { return b.bw }

// TLS reports whether the backend connection is on TLS.
func (b *Backend) TLS() bool { return b.isTLS }

// StartTLS runs the TLS handshake after the backend accepted the
// protocol's STARTTLS. Bytes the backend sent after its go-ahead would be
// plaintext injected before TLS: refused.
func (b *Backend) StartTLS() error {
	if n := b.br.Buffered(); n > 0 {
		return fmt.Errorf("STARTTLS: %d bytes of plaintext after the go-ahead", n)
	}
	tc := tls.Client(b.conn, backendTLSConfig(b.tlsBase, b.Route))
	if err := tc.HandshakeContext(b.ctx); err != nil {
		return fmt.Errorf("TLS handshake after STARTTLS: %w", err)
	}
	b.conn, b.isTLS = tc, true
	b.br.Reset(b.conn)
	b.bw.Reset(b.conn)
	return nil
}

// Close ends a backend that is not handed over.
func (b *Backend) Close() {
	b.stop()
	_ = b.conn.Close()
	b.endLease()
}

// endLease ends the pool lease, if any, once.
func (b *Backend) endLease() {
	if b.lease != nil {
		b.lease.End()
		b.lease = nil
	}
}

// dialBackend connects to b within timeout and, until deadline, sends a
// PROXY header when b asks for one (carrying client and local) and runs the
// TLS handshake of an implicit-TLS backend. The deadline stays set on the
// returned conn.
func dialBackend(ctx context.Context, b route.Backend, timeout time.Duration, deadline time.Time,
	tlsBase *tls.Config, client, local netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", b.Addr)
	if err != nil {
		return nil, err // a *net.OpError names the address
	}
	_ = c.SetDeadline(deadline)
	if b.ClientAddr == route.ClientAddrProxy {
		if err := listener.WriteHeader(c, b.ProxyVersion, client, local); err != nil {
			c.Close()
			return nil, fmt.Errorf("backend %s: %w", b.Addr, err)
		}
	}
	if b.TLS != route.TLSImplicit {
		return c, nil
	}
	tc := tls.Client(c, backendTLSConfig(tlsBase, b))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("backend %s: TLS handshake: %w", b.Addr, err)
	}
	return tc, nil
}

// resumingBackends is the base configuration for backend TLS with a
// session cache (nil: system roots).
func resumingBackends(base *tls.Config) *tls.Config {
	if base == nil {
		base = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return tlsconf.Resuming(base)
}

// backendTLSConfig is base cloned (system roots when nil) with b's server
// name; certificates are verified unless base says otherwise.
func backendTLSConfig(base *tls.Config, b route.Backend) *tls.Config {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg.ServerName = b.ServerName
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(b.Addr)
	}
	return cfg
}
