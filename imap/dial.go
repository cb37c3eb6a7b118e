package imap

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/route"
)

// This file holds what a proxy for any protocol needs to reach a backend;
// nothing here is IMAP's own. When the POP3 or ManageSieve proxies come,
// it moves to a shared package.

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
