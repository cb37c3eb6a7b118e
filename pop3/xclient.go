package pop3

import (
	"net/netip"

	"github.com/pipegate/pipegate/pop3/wire"
)

// cmdXClient handles XCLIENT from a trusted proxy in front (Dovecot's
// pop3-login cmd_xclient): ADDR and PORT are the address of the proxy's
// client, passed on to the backend in place of the proxy's; TTL is how
// many proxy hops the login may still take, and can only lower the
// session's (a loop of proxies ends when it reaches 1). Answered "+OK
// Updated", or "-ERR Invalid parameters" with nothing applied.
func (c *conn) cmdXClient(cmd *wire.Command) {
	x, err := wire.ParseXClient(cmd.Args)
	if err != nil {
		c.s.Logger().Info("pop3: XCLIENT refused", "peer", c.s.Client().String(), "err", err)
		c.err("", "Invalid parameters")
		return
	}
	c.applyXClient(x.Addr, x.TTL, x.Session)
	c.ok("Updated")
}

// applyXClient takes what a trusted proxy said.
func (c *conn) applyXClient(addr netip.AddrPort, ttl int, session string) {
	if addr.Addr().IsValid() {
		c.s.SetClient(addr)
	}
	if ttl >= 0 {
		// TTL=0 is a loop too (Dovecot refuses every TTL of 1 or less);
		// gateway.Session.SetProxyTTL takes 0 as "the default".
		c.s.SetProxyTTL(min(c.s.ProxyTTL(), max(ttl, 1)))
	}
	c.s.Logger().Info("pop3: XCLIENT from a trusted proxy", "peer", c.s.Client().String(),
		"client", c.client().String(), "ttl", c.s.ProxyTTL(), "peer_session", session)
}

// client is the address of the client as far as it is known: the one a
// trusted proxy gave with XCLIENT, else the connection's.
func (c *conn) client() netip.AddrPort {
	return c.s.Client()
}

// trusted reports whether addr is in one of nets.
func trusted(nets []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, n := range nets {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}
