package forward

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/pipegate/pipegate/tlsconf"
)

// Balance says how a forward picks among its upstreams.
type Balance int

const (
	// Order tries the upstreams in the order given: the first one that
	// is not backing off and accepts the connection wins.
	Order Balance = iota
	// RoundRobin starts each connection at the next upstream in turn.
	RoundRobin
)

func (b Balance) String() string {
	if b == RoundRobin {
		return "roundrobin"
	}
	return "order"
}

// ParseBalance parses "order" (or "") and "roundrobin".
func ParseBalance(s string) (Balance, error) {
	switch s {
	case "", "order":
		return Order, nil
	case "roundrobin", "round-robin":
		return RoundRobin, nil
	}
	return Order, fmt.Errorf("unknown balance %q (want order or roundrobin)", s)
}

// Defaults used when a Config field is zero.
const (
	DefaultDialTimeout      = 5 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultBackoff          = time.Second
	MaxBackoff              = 30 * time.Second
)

// Route sends TLS connections whose SNI server name matches ServerName to
// Upstreams. ServerName is an exact name ("mail.example.com") or a
// wildcard for one or more leading labels ("*.example.com"); matching
// ignores case.
type Route struct {
	ServerName string
	Upstreams  []string
}

// Config is one forward. The zero value of every field but Listen and
// Upstreams (or Routes) is useful.
type Config struct {
	Name      string   // for logs and metrics; defaults to Listen
	Listen    string   // "host:port" or "unix:/path"
	Upstreams []string // "host:port" or "unix:/path"; the default route when Routes is set
	Routes    []Route  // SNI routes, tried before Upstreams
	Balance   Balance

	// TLS, when set, terminates TLS from clients (a config from
	// tlsconf.Server.Config, for instance). SNI routes then match the
	// server name of the handshake.
	TLS *tls.Config
	// UpstreamTLS, when set, makes TLS connections to the upstreams. When
	// its ServerName is empty, each upstream is verified against the host
	// part of its address. Sessions are resumed: its ClientSessionCache,
	// or one the forward makes (tlsconf.Resuming).
	UpstreamTLS *tls.Config
	// tlsCommit, set by LoadFile and BuildSpec when TLS comes from a
	// cached tlsconf.Server whose files were re-read, serves what they
	// read; Set.Apply calls it once the whole reload is sure to succeed.
	tlsCommit func()
	// tlsServed, set by LoadFile and BuildSpec, describes the certificates
	// TLS serves, for Set.Apply to log (a certificate out of its validity
	// is served all the same, and logged as a warning).
	tlsServed func() []tlsconf.CertInfo

	SendProxy string // "", "v1" or "v2": PROXY header sent to the upstream
	// AcceptProxy reads a PROXY header (v1 or v2) from peers in
	// TrustedProxies (and from any peer of a unix listener) and takes the
	// client address from it; such a peer must send one. Other peers are
	// served with their own address.
	AcceptProxy    bool
	TrustedProxies []netip.Prefix

	MaxConns      int // open connections in total; 0: unlimited
	MaxConnsPerIP int // open connections per client address; 0: unlimited

	DialTimeout      time.Duration // per upstream attempt; 0: DefaultDialTimeout
	HandshakeTimeout time.Duration // PROXY header, TLS handshake or ClientHello; 0: DefaultHandshakeTimeout
	IdleTimeout      time.Duration // no bytes either way; 0: none
	MaxLifetime      time.Duration // 0: none
	HalfCloseLinger  time.Duration // 0: pipe.DefaultHalfCloseLinger
	// TCPKeepAlive, when positive, turns TCP keep-alive probes on for both
	// connections with this idle time and interval; 0 leaves them off, as
	// HAProxy and nginx do by default (IdleTimeout ends dead connections).
	TCPKeepAlive time.Duration
	// Backoff is how long an upstream whose dial failed is tried only after
	// the others (it is never skipped, so that a connection is not refused
	// while it might answer); it doubles with each further failure up to
	// MaxBackoff, or up to Backoff itself when that is longer. 0:
	// DefaultBackoff.
	Backoff time.Duration

	// GoAccept makes Serve accept with Go and set each connection up on a
	// goroutine even where the event loops could do it all (loopaccept.go):
	// a way back for operators. A Reload that sets it hands the connections
	// the loops accept to goroutines; one that clears it takes effect at the
	// next Serve.
	GoAccept bool
	// TLSOnGoroutines keeps TLS-terminated or -originated pairs on
	// goroutines running crypto/tls (pipe.Engine.TLSOnGoroutines) instead
	// of the event loops' own TLS 1.3 record layer: another way back.
	TLSOnGoroutines bool
}

// FieldError is a Config field with a bad value. Field is its key in
// pipegate's config file ("send_proxy", "to"); the command line's flag is
// the same name in kebab-case ("--send-proxy").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Validate checks the fields that do not depend on the network. Errors
// are *FieldError.
func (c *Config) Validate() error {
	if _, _, err := SplitAddr(c.Listen); err != nil {
		return &FieldError{Field: "listen", Err: err}
	}
	if len(c.Upstreams) == 0 && len(c.Routes) == 0 {
		return fieldErr("to", "no upstream given")
	}
	for _, u := range c.Upstreams {
		if _, _, err := SplitAddr(u); err != nil {
			return &FieldError{Field: "to", Err: err}
		}
	}
	for _, r := range c.Routes {
		if err := checkServerName(r.ServerName); err != nil {
			return &FieldError{Field: "sni", Err: err}
		}
		if len(r.Upstreams) == 0 {
			return fieldErr("sni", "route %q has no upstream", r.ServerName)
		}
		for _, u := range r.Upstreams {
			if _, _, err := SplitAddr(u); err != nil {
				return &FieldError{Field: "sni", Err: fmt.Errorf("route %q: %w", r.ServerName, err)}
			}
		}
	}
	if t := c.UpstreamTLS; t != nil && t.ServerName == "" && !t.InsecureSkipVerify {
		addrs := slices.Clone(c.Upstreams)
		for _, r := range c.Routes {
			addrs = append(addrs, r.Upstreams...)
		}
		for _, u := range addrs {
			if network, _, _ := SplitAddr(u); network == "unix" {
				return fieldErr("to_tls.server_name", "missing: TLS to the unix: upstream %s needs a name to verify its certificate against", u)
			}
		}
	}
	switch c.SendProxy {
	case "", "v1", "v2":
	default:
		return fieldErr("send_proxy", "unknown version %q (want v1 or v2)", c.SendProxy)
	}
	if network, _, _ := SplitAddr(c.Listen); c.AcceptProxy && len(c.TrustedProxies) == 0 && network != "unix" {
		return fieldErr("trusted_proxy", "accept_proxy needs at least one trusted proxy CIDR (peers on a unix listener are trusted)")
	}
	if c.MaxConns < 0 {
		return fieldErr("max_conns", "negative value %d", c.MaxConns)
	}
	if c.MaxConnsPerIP < 0 {
		return fieldErr("max_conns_per_ip", "negative value %d", c.MaxConnsPerIP)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"dial_timeout", c.DialTimeout},
		{"handshake_timeout", c.HandshakeTimeout},
		{"idle_timeout", c.IdleTimeout},
		{"max_lifetime", c.MaxLifetime},
		{"half_close_linger", c.HalfCloseLinger},
		{"backoff", c.Backoff},
		{"tcp_keepalive", c.TCPKeepAlive},
	} {
		if d.v < 0 {
			return fieldErr(d.field, "negative duration %v", d.v)
		}
	}
	return nil
}

func checkServerName(name string) error {
	n := strings.TrimPrefix(name, "*.")
	if n == "" || strings.ContainsAny(n, " */:") {
		return fmt.Errorf("bad server name %q (want host.example or *.example)", name)
	}
	return nil
}

func (c *Config) name() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Listen
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
