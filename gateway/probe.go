package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pipegate/pipegate/route"
)

// Prober is implemented by a protocol that can check a backend as a
// login does, for the health checks of a pool: the greeting, STARTTLS
// when b.Route asks for it (Backend.StartTLS), a login of a test account
// when user is not empty, and a goodbye. It returns nil when the backend
// is fit to take users.
type Prober interface {
	Probe(b *Backend, user, password string) error
}

// DefaultProbeTimeout bounds a probe whose ctx has no deadline.
const DefaultProbeTimeout = 5 * time.Second

// Probe checks the backend b for a health check: it connects as a login
// does (PROXY header without a client, implicit TLS with BackendTLS) and
// lets the protocol's Prober speak; a protocol without one is up when
// its greeting's first line arrives. The probe ends with ctx (its
// deadline, or DefaultProbeTimeout).
func (s *Server) Probe(ctx context.Context, b route.Backend, user, password string) error {
	if b.Pool != "" {
		return errors.New("gateway: probe of a pool: probe its members")
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultProbeTimeout)
	}
	dyn := s.current()
	c, err := dialBackend(ctx, b, time.Until(deadline), deadline, dyn.backendTLS, netip.AddrPort{}, netip.AddrPort{})
	if err != nil {
		return err
	}
	be := &Backend{Route: b, ctx: ctx, conn: c, isTLS: b.TLS == route.TLSImplicit, tlsBase: dyn.backendTLS}
	be.br = bufio.NewReader(c)
	be.bw = bufio.NewWriter(c)
	be.stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer be.Close()
	if p, ok := s.proto().(Prober); ok {
		return p.Probe(be, user, password)
	}
	if _, err := be.br.ReadSlice('\n'); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	return nil
}
