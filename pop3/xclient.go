package pop3

import (
	"net/netip"

	"github.com/pipegate/pipegate/pop3/wire"
)

// cmdXClient handles XCLIENT from a trusted proxy in front (Dovecot's
// pop3-login cmd_xclient): ADDR and PORT are the address of the proxy's
// client, passed on to the backend in place of the proxy's; DESTADDR and
// DESTPORT are where that client connected, which routes (local:) see
// and a PROXY header to the backend carries (without DESTPORT the
// connection's port stays); TTL is how many proxy hops the login may
// still take, and can only lower the session's (a loop of proxies ends
// when it reaches 1). Answered "+OK Updated", or "-ERR Invalid
// parameters" with nothing applied.
func (c *conn) cmdXClient(cmd *wire.Command) {
	x, err := wire.ParseXClient(cmd.Args)
	if err != nil {
		c.s.Logger().Info("pop3: XCLIENT refused", "peer", c.s.Client().String(), "err", err)
		c.err("", "Invalid parameters")
		return
	}
	x.ApplyLogged(c.s, "pop3: XCLIENT from a trusted proxy")
	c.ok("Updated")
}

// client is the address of the client as far as it is known: the one a
// trusted proxy gave with XCLIENT, else the connection's.
func (c *conn) client() netip.AddrPort {
	return c.s.Client()
}
