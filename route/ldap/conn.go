package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// connection returns the shared connection, making it if needed.
func (s *Source) connection(ctx context.Context) (*goldap.Conn, string, error) {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, "", fmt.Errorf("route/ldap: wait for the connection: %w", ctx.Err())
	}
	defer func() { <-s.lock }()
	if s.closed {
		return nil, "", errClosed
	}
	if s.conn != nil && !s.conn.IsClosing() {
		return s.conn, s.connURL, nil
	}
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	var errs []error
	for _, u := range s.cfg.URLs {
		c, err := s.dial(ctx, u)
		if err == nil {
			s.conn, s.connURL = c, u
			return c, u, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", fmt.Errorf("route/ldap: %w", errors.Join(errs...))
}

// errClosed: a lookup after Close (a session finishing while the daemon
// stops) opens no connection that nobody would close again.
var errClosed = errors.New("route/ldap: source closed")

// drop forgets c if it is still the shared connection.
func (s *Source) drop(c *goldap.Conn) {
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	if s.conn == c {
		s.conn = nil
	}
	c.Close()
}

// dial connects to one URL, upgrades with StartTLS if asked and binds.
func (s *Source) dial(ctx context.Context, rawURL string) (*goldap.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rawURL, err)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
	}
	addr := net.JoinHostPort(host, port)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", rawURL, err)
	}
	tlsConf := s.tlsConfig(host)
	isTLS := u.Scheme == "ldaps"
	if isTLS {
		tc := tls.Client(nc, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS with %s: %w", rawURL, err)
		}
		nc = tc
	}
	c := goldap.NewConn(nc, isTLS)
	c.Start()
	c.SetTimeout(remaining(ctx))
	if s.cfg.StartTLS {
		if err := c.StartTLS(tlsConf); err != nil {
			c.Close()
			return nil, fmt.Errorf("StartTLS with %s: %w", rawURL, err)
		}
	}
	if s.cfg.BindDN != "" {
		if err := c.Bind(s.cfg.BindDN, *s.password.Load()); err != nil {
			c.Close()
			return nil, fmt.Errorf("bind to %s as %s: %w", rawURL, s.cfg.BindDN, err)
		}
	}
	c.SetTimeout(s.cfg.Timeout)
	return c, nil
}

func (s *Source) tlsConfig(host string) *tls.Config {
	var c *tls.Config
	if s.cfg.TLS != nil {
		c = s.cfg.TLS.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	return c
}

// remaining is the time left before ctx's deadline.
func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return 5 * time.Second
}
