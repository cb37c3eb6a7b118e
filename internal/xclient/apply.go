package xclient

import (
	"log/slog"
	"net/netip"
)

// Session is what Apply changes: *gateway.Session is one.
type Session interface {
	SetClient(addr netip.AddrPort)
	SetLocal(addr netip.AddrPort)
	ProxyTTL() int
	SetProxyTTL(n int)
}

// Apply gives s what a trusted proxy said: the address of its client
// when ADDR was given, the address that client connected to when
// DESTADDR was given (gateway.Session.SetLocal keeps the connection's
// port when DESTPORT was not), and TTL, the proxy hops the login may
// still take, which can only lower the session's (a loop of proxies
// ends when it reaches 1).
func (x Attrs) Apply(s Session) {
	if x.Addr.Addr().IsValid() {
		s.SetClient(x.Addr)
	}
	if x.Local.Addr().IsValid() {
		s.SetLocal(x.Local)
	}
	if x.TTL >= 0 {
		// TTL=0 is a loop too (Dovecot refuses every TTL of 1 or less);
		// gateway.Session.SetProxyTTL takes 0 as "the default".
		s.SetProxyTTL(min(s.ProxyTTL(), max(x.TTL, 1)))
	}
}

// LoggedSession is a Session that names its addresses and has a logger:
// *gateway.Session is one.
type LoggedSession interface {
	Session
	Client() netip.AddrPort
	Local() netip.AddrPort
	Logger() *slog.Logger
}

// ApplyLogged is Apply, then the line what (say "pop3: XCLIENT from a
// trusted proxy") in s's log: the proxy's address (peer), the client's
// and the local address now, the proxy TTL, and the proxy's session ID.
func (x Attrs) ApplyLogged(s LoggedSession, what string) {
	peer := s.Client()
	x.Apply(s)
	s.Logger().Info(what, "peer", peer.String(), "client", s.Client().String(), "local", s.Local().String(),
		"ttl", s.ProxyTTL(), "peer_session", x.Session)
}

// Trusted reports whether addr (an IPv4-mapped address as IPv4) is in
// one of nets: whether a proxy there may say XCLIENT.
func Trusted(nets []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, n := range nets {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}
