// Package ldap is a route source that searches a directory (OpenLDAP,
// Active Directory, 389-ds) for the account and builds the route from the
// entry's attributes.
//
//	src, err := ldap.New(ldap.Config{
//		URLs:             []string{"ldaps://ldap1.example.org", "ldaps://ldap2.example.org"},
//		BindDN:           "cn=pipegate,ou=services,dc=example,dc=org",
//		BindPassword:     bindPassword, // the secret itself; the config reads bind_password_file
//		BaseDN:           "ou=people,dc=example,dc=org",
//		Filter:           "(mail=%u)",  // %u, %n, %d; values are escaped with ldap.EscapeFilter
//		HostAttr:         "mailHost",   // the backend's host name ...
//		Port:             993,          // ... with this port and TLS mode
//		TLSMode:          "tls",
//	})
//	if err != nil { ... }
//	defer src.Close()
//	rt, err := src.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@example.org"})
//
// The route comes from either BackendAttr, an attribute holding backend
// URLs (imaps://host:port, one per value, tried in order; URLs of several
// protocols may stand together, the gateway uses those of its session's),
// or HostAttr (one host per value) with the port, TLS mode and certificate
// name from PortAttr, TLSAttr and ServerNameAttr, or else from Port,
// TLSMode and the host. LoginAttr, if set and present, names the login for
// the backend.
//
// A host makes a backend of the request's protocol (Request.Protocol:
// imap, pop3, sieve, submission), its scheme chosen by the TLS mode
// (pop3, pop3+starttls, pop3s). Port and PortAttr are IMAP's; a protocol's
// port comes from PortAttrs[protocol] when the entry has it, else
// Ports[protocol], else the scheme's port (110, 995, 4190, 587, 465).
// HostAttrs[protocol], when the entry has it, names the protocol's hosts
// instead of HostAttr (submission on other hosts than the mailboxes):
//
//	HostAttr:  "mailHost",
//	HostAttrs: map[string]string{"submission": "submissionHost"},
//	PortAttrs: map[string]string{"pop3": "pop3Port"},
//	Ports:     map[string]int{"sieve": 4190},
//
// No entry, or an entry without the host or backend attribute, is
// route.ErrNotFound; more than one entry is an error (the filter is
// ambiguous). A directory that is down or slow is an error at the
// lookup's deadline; the connection is then dropped and made again by the
// next lookup, trying the URLs in order, so the source recovers by itself.
package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/pipegate/pipegate/route"
)

// Config says which directory to search and how to read an entry.
type Config struct {
	URLs         []string    // ldap://host[:port] or ldaps://host[:port], tried in order
	StartTLS     bool        // upgrade ldap:// with StartTLS before binding
	TLS          *tls.Config // for ldaps:// and StartTLS (default: system roots, ServerName from the URL)
	BindDN       string      // empty: anonymous
	BindPassword string      // BindDN's password; never in logs or errors
	BaseDN       string
	Scope        string // "sub" (default), "one" or "base"
	Filter       string // default "(mail=%u)"

	BackendAttr    string // attribute with backend URLs; or:
	HostAttr       string // attribute with backend host names (e.g. mailHost)
	PortAttr       string // optional attribute with the port
	TLSAttr        string // optional attribute with the TLS mode: none, starttls or tls
	ServerNameAttr string // optional attribute with the certificate name
	LoginAttr      string // optional attribute with the login name for the backend

	Port    int    // IMAP's port when PortAttr is unset or absent (default 143, or 993 with TLS "tls")
	TLSMode string // TLS mode when TLSAttr is unset or absent: none (default), starttls, tls

	// Per protocol ("imap", "pop3", "sieve", "submission"), for HostAttr
	// routes: the attribute with the protocol's hosts (HostAttr when unset
	// or absent), the attribute with its port, and its port when that
	// attribute is unset or absent (default: the scheme's). An "imap" entry
	// of PortAttrs or Ports takes the place of PortAttr or Port.
	HostAttrs map[string]string
	PortAttrs map[string]string
	Ports     map[string]int

	Timeout time.Duration // bound for dialling, binding and searching when ctx has none sooner (default 5s)
}

// Source searches an LDAP directory. It is safe for concurrent use; it
// keeps one connection, on which lookups run concurrently.
type Source struct {
	cfg      Config
	password atomic.Pointer[string] // BindDN's; SetPassword replaces it
	scope    int
	tlsMode  route.TLSMode
	attrs    []string

	lock    chan struct{} // held while (re)connecting; waiting honours ctx
	conn    *goldap.Conn  // guarded by lock
	connURL string        // the URL conn is connected to
	closed  bool          // guarded by lock: Close ran, no new connection
}

// CheckURL checks one server URL of Config.URLs, with Config.StartTLS.
func CheckURL(u string, startTLS bool) error {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "ldap" && pu.Scheme != "ldaps") || pu.Host == "" {
		return fmt.Errorf("%q: want ldap://HOST[:PORT] or ldaps://HOST[:PORT]", u)
	}
	if startTLS && pu.Scheme == "ldaps" {
		return fmt.Errorf("%q: start_tls with ldaps://", u)
	}
	return nil
}

// New checks cfg; it does not connect yet.
func New(cfg Config) (*Source, error) {
	s := &Source{cfg: cfg, lock: make(chan struct{}, 1)}
	s.cfg.BindPassword = "" // kept in s.password only
	s.password.Store(&cfg.BindPassword)
	if len(cfg.URLs) == 0 {
		return nil, errors.New("route/ldap: urls: empty")
	}
	for i, u := range cfg.URLs {
		if err := CheckURL(u, cfg.StartTLS); err != nil {
			return nil, fmt.Errorf("route/ldap: urls[%d]: %w", i, err)
		}
	}
	if cfg.BaseDN == "" {
		return nil, errors.New("route/ldap: base_dn: empty")
	}
	if _, err := goldap.ParseDN(cfg.BaseDN); err != nil {
		return nil, fmt.Errorf("route/ldap: base_dn: %w", err)
	}
	switch cfg.Scope {
	case "", "sub":
		s.scope = goldap.ScopeWholeSubtree
	case "one":
		s.scope = goldap.ScopeSingleLevel
	case "base":
		s.scope = goldap.ScopeBaseObject
	default:
		return nil, fmt.Errorf("route/ldap: scope: %q: want sub, one or base", cfg.Scope)
	}
	if s.cfg.Filter == "" {
		s.cfg.Filter = "(mail=%u)"
	}
	sample, err := route.Expand(s.cfg.Filter, "user@example.org", goldap.EscapeFilter)
	if err != nil {
		return nil, fmt.Errorf("route/ldap: filter: %w", err)
	}
	if _, err := goldap.CompileFilter(sample); err != nil {
		return nil, fmt.Errorf("route/ldap: filter %q: %w", s.cfg.Filter, err)
	}
	switch {
	case cfg.BackendAttr != "" && cfg.HostAttr != "":
		return nil, errors.New("route/ldap: backend_attr and host_attr both set (want one)")
	case cfg.BackendAttr == "" && cfg.HostAttr == "":
		return nil, errors.New("route/ldap: want backend_attr or host_attr")
	}
	if s.tlsMode, err = parseTLSMode(cfg.TLSMode); err != nil {
		return nil, fmt.Errorf("route/ldap: tls_mode: %w", err)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("route/ldap: port: %d: want 1-65535", cfg.Port)
	}
	if err := s.perProtocol(); err != nil {
		return nil, err
	}
	for _, a := range []string{cfg.BackendAttr, cfg.HostAttr, cfg.PortAttr, cfg.TLSAttr, cfg.ServerNameAttr, cfg.LoginAttr} {
		if a != "" {
			s.attrs = append(s.attrs, a)
		}
	}
	for _, m := range []map[string]string{cfg.HostAttrs, cfg.PortAttrs} {
		for _, p := range slices.Sorted(maps.Keys(m)) {
			if !slices.Contains(s.attrs, m[p]) {
				s.attrs = append(s.attrs, m[p])
			}
		}
	}
	if cfg.BindDN != "" && cfg.BindPassword == "" {
		return nil, errors.New("route/ldap: bind_dn without a password (bind_password_file)")
	}
	if s.cfg.Timeout <= 0 {
		s.cfg.Timeout = 5 * time.Second
	}
	return s, nil
}

// SetPassword replaces BindDN's password for the connections made from
// now on (a rotated secret, re-read on reload); the open connection,
// already bound, stays.
func (s *Source) SetPassword(pw string) { s.password.Store(&pw) }

// perProtocol checks HostAttrs, PortAttrs and Ports, and folds Port and
// PortAttr into them as IMAP's.
func (s *Source) perProtocol() error {
	cfg := &s.cfg
	if cfg.BackendAttr != "" {
		for _, f := range []struct {
			what string
			n    int
		}{{"host_attrs", len(cfg.HostAttrs)}, {"port_attrs", len(cfg.PortAttrs)}, {"ports", len(cfg.Ports)}} {
			if f.n > 0 {
				return fmt.Errorf("route/ldap: %s: goes with host_attr, not backend_attr", f.what)
			}
		}
	}
	// In a fixed order, so that a config with several problems is told
	// the same one each time.
	for _, f := range []struct {
		what string
		m    map[string]string
	}{{"host_attrs", cfg.HostAttrs}, {"port_attrs", cfg.PortAttrs}} {
		for _, p := range slices.Sorted(maps.Keys(f.m)) {
			if a := f.m[p]; !validProtocol(p) || a == "" {
				return fmt.Errorf("route/ldap: %s: %q: %q: want a protocol name and an attribute", f.what, p, a)
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(cfg.Ports)) {
		if n := cfg.Ports[p]; !validProtocol(p) || n < 1 || n > 65535 {
			return fmt.Errorf("route/ldap: ports: %s: %d: want a protocol name and a port 1-65535", p, n)
		}
	}
	if cfg.PortAttr != "" {
		if a, ok := cfg.PortAttrs["imap"]; ok && a != cfg.PortAttr {
			return errors.New("route/ldap: port_attrs: imap and port_attr both set (want one)")
		}
		cfg.PortAttrs = maps.Clone(cfg.PortAttrs)
		if cfg.PortAttrs == nil {
			cfg.PortAttrs = map[string]string{}
		}
		cfg.PortAttrs["imap"] = cfg.PortAttr
	}
	if cfg.Port != 0 {
		if n, ok := cfg.Ports["imap"]; ok && n != cfg.Port {
			return errors.New("route/ldap: ports: imap and port both set (want one)")
		}
		cfg.Ports = maps.Clone(cfg.Ports)
		if cfg.Ports == nil {
			cfg.Ports = map[string]int{}
		}
		cfg.Ports["imap"] = cfg.Port
	}
	return nil
}

// validProtocol accepts a protocol name: lower-case letters and digits.
func validProtocol(p string) bool {
	if p == "" {
		return false
	}
	for _, c := range p {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// parseTLSMode is route.ParseTLSMode for a config value or an attribute,
// with spaces around it allowed.
func parseTLSMode(s string) (route.TLSMode, error) {
	m, err := route.ParseTLSMode(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return m, nil
}

// Close closes the connection.
func (s *Source) Close() error {
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	s.closed = true
	if s.conn != nil {
		err := s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}

// Lookup searches for the account.
func (s *Source) Lookup(ctx context.Context, req route.Request) (route.Route, error) {
	filter, err := route.Expand(s.cfg.Filter, req.Account, goldap.EscapeFilter)
	if err != nil {
		return route.Route{}, fmt.Errorf("route/ldap: filter: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, connURL, err := s.connection(ctx)
	if err != nil {
		return route.Route{}, err
	}
	sr := goldap.NewSearchRequest(s.cfg.BaseDN, s.scope, goldap.NeverDerefAliases, 2, 0, false, filter, s.attrs, nil)
	var entries []*goldap.Entry
	resp := conn.SearchAsync(ctx, sr, 2)
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			entries = append(entries, e)
		}
	}
	err = resp.Err()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // SearchAsync ends quietly on cancellation
	}
	if err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
			return route.Route{}, fmt.Errorf("route/ldap: search %s for %s: more than one entry (make the filter unique)", s.cfg.BaseDN, filter)
		}
		if !isServerAnswer(err) {
			s.drop(conn) // down, or too slow: connect afresh next time
		}
		return route.Route{}, fmt.Errorf("route/ldap: search %s for %s on %s: %w", s.cfg.BaseDN, filter, connURL, err)
	}
	switch len(entries) {
	case 0:
		return route.Route{}, route.ErrNotFound
	case 1:
	default:
		return route.Route{}, fmt.Errorf("route/ldap: search %s for %s: more than one entry (make the filter unique)", s.cfg.BaseDN, filter)
	}
	return s.entryRoute(entries[0], req.Protocol)
}

// isServerAnswer tells an LDAP result code sent by the server (the
// connection is fine) from a network failure or timeout.
func isServerAnswer(err error) bool {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return false
	}
	return le.ResultCode != goldap.ErrorNetwork && le.ResultCode < goldap.ErrorNetwork
}

// entryRoute reads the route of protocol ("" is IMAP) from the attributes.
func (s *Source) entryRoute(e *goldap.Entry, protocol string) (route.Route, error) {
	if protocol == "" {
		protocol = "imap"
	}
	var rt route.Route
	if s.cfg.LoginAttr != "" {
		rt.Login = e.GetEqualFoldAttributeValue(s.cfg.LoginAttr)
	}
	if s.cfg.BackendAttr != "" {
		urls := e.GetEqualFoldAttributeValues(s.cfg.BackendAttr)
		if len(urls) == 0 {
			return route.Route{}, fmt.Errorf("%w: %s has no %s", route.ErrNotFound, e.DN, s.cfg.BackendAttr)
		}
		for _, u := range urls {
			for _, f := range strings.Fields(u) {
				b, err := route.ParseBackend(f)
				if err != nil {
					return route.Route{}, fmt.Errorf("route/ldap: %s: %s: %w", e.DN, s.cfg.BackendAttr, err)
				}
				if rt.Backends = append(rt.Backends, b); len(rt.Backends) > route.MaxBackends {
					return route.Route{}, fmt.Errorf("route/ldap: %s: %s: more than %d backends", e.DN, s.cfg.BackendAttr, route.MaxBackends)
				}
			}
		}
		if len(rt.Backends) == 0 { // only blank values: as if absent
			return route.Route{}, fmt.Errorf("%w: %s has no URL in %s", route.ErrNotFound, e.DN, s.cfg.BackendAttr)
		}
		return rt, nil
	}
	hostAttr := s.cfg.HostAttr
	hosts := e.GetEqualFoldAttributeValues(hostAttr)
	if a := s.cfg.HostAttrs[protocol]; a != "" {
		if v := e.GetEqualFoldAttributeValues(a); len(v) > 0 {
			hostAttr, hosts = a, v
		}
	}
	if len(hosts) == 0 {
		return route.Route{}, fmt.Errorf("%w: %s has no %s", route.ErrNotFound, e.DN, hostAttr)
	}
	if len(hosts) > route.MaxBackends {
		return route.Route{}, fmt.Errorf("route/ldap: %s: %s: more than %d hosts", e.DN, hostAttr, route.MaxBackends)
	}
	mode := s.tlsMode
	if s.cfg.TLSAttr != "" {
		if v := e.GetEqualFoldAttributeValue(s.cfg.TLSAttr); v != "" {
			m, err := parseTLSMode(v)
			if err != nil {
				return route.Route{}, fmt.Errorf("route/ldap: %s: %s: %w", e.DN, s.cfg.TLSAttr, err)
			}
			mode = m
		}
	}
	port := s.cfg.Ports[protocol] // 0: the scheme's
	if a := s.cfg.PortAttrs[protocol]; a != "" {
		if v := e.GetEqualFoldAttributeValue(a); v != "" {
			p, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || p < 1 || p > 65535 {
				return route.Route{}, fmt.Errorf("route/ldap: %s: %s: %q: want 1-65535", e.DN, a, v)
			}
			port = p
		}
	}
	serverName := ""
	if s.cfg.ServerNameAttr != "" {
		serverName = e.GetEqualFoldAttributeValue(s.cfg.ServerNameAttr)
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" || strings.ContainsAny(h, " /?#@[]") {
			return route.Route{}, fmt.Errorf("route/ldap: %s: %s: %q is not a host name", e.DN, hostAttr, h)
		}
		b, err := route.NewBackend(protocol, mode, h, port)
		if err != nil {
			return route.Route{}, fmt.Errorf("route/ldap: %s: %s: %w", e.DN, hostAttr, err)
		}
		if serverName != "" {
			b.ServerName = serverName
		}
		rt.Backends = append(rt.Backends, b)
	}
	return rt, nil
}
