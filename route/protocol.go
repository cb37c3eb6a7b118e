package route

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// SchemeFor returns the scheme of protocol spoken with tls ("pop3" and
// TLSImplicit: "pop3s"), for sources that name a backend by host, port and
// TLS mode instead of a URL. ok is false when no scheme of protocol with
// that mode is registered (its package is not linked in).
func (s *Schemes) SchemeFor(protocol string, tls TLSMode) (name string, sc Scheme, ok bool) {
	name = s.name(protocol, tls)
	if name == "" {
		return "", Scheme{}, false
	}
	sc, ok = s.Lookup(name)
	return name, sc, ok
}

// NewBackend makes a backend of protocol at host:port spoken with tls,
// with the scheme's defaults (DefaultSchemes): port 0 is the scheme's port
// (993 for imaps, 110 for pop3), the client's address is passed the
// scheme's way, and the certificate is verified against host. It is what
// ParseBackend gives for SCHEME://HOST:PORT.
func NewBackend(protocol string, tls TLSMode, host string, port int) (Backend, error) {
	return DefaultSchemes.NewBackend(protocol, tls, host, port)
}

// NewBackend is NewBackend with the schemes of t.
func (t *Schemes) NewBackend(protocol string, tls TLSMode, host string, port int) (Backend, error) {
	if protocol == "" {
		protocol = "imap"
	}
	name, sc, ok := t.SchemeFor(protocol, tls)
	if !ok {
		return Backend{}, fmt.Errorf("backend %s: no scheme for protocol %q with TLS %s (want one of %s)", host, protocol, tls, t.names())
	}
	if port == 0 {
		p, err := strconv.Atoi(sc.Port)
		if err != nil {
			return Backend{}, fmt.Errorf("backend %s: scheme %s has no default port", host, name)
		}
		port = p
	}
	if port < 1 || port > 65535 {
		return Backend{}, fmt.Errorf("backend %s: port %d: want 1-65535", host, port)
	}
	u := name + "://" + net.JoinHostPort(host, strconv.Itoa(port))
	// host is taken as it is written, not as part of a URL: ParseBackend
	// would decode "%2E" in it to ".".
	if a, err := netip.ParseAddr(host); err != nil && !validHostName(host) || err == nil && a.Zone() != "" {
		return Backend{}, fmt.Errorf("backend %q: host %q: %s", u, host, hostRule)
	}
	return t.ParseBackend(u)
}
