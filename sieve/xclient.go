package sieve

import (
	"net/netip"

	"github.com/pipegate/pipegate/sieve/wire"
)

// cmdXClient handles XCLIENT from a trusted proxy in front (Pigeonhole's
// managesieve-login cmd_xclient): ADDR and PORT are the address of the
// proxy's client, passed on to the backend in place of the proxy's;
// DESTADDR and DESTPORT are where that client connected, which routes
// (local:) see and a PROXY header to the backend carries (without
// DESTPORT the connection's port stays); TTL is how many proxy hops the
// login may still take, and can only lower the session's (a loop of
// proxies ends when it reaches 1). Answered OK "Updated", or NO with
// nothing applied.
func (c *conn) cmdXClient(cmd *wire.Command) {
	x, err := wire.ParseXClient(cmd.Args)
	if err != nil {
		c.s.Logger().Info("sieve: XCLIENT refused", "peer", c.s.Client().String(), "err", err)
		c.reply("NO", "", wire.SafeText(err.Error()))
		return
	}
	x.ApplyLogged(c.s, "sieve: XCLIENT from a trusted proxy")
	c.reply("OK", "", "Updated")
}

// client is the address of the client as far as it is known: the one a
// trusted proxy gave with XCLIENT, else the connection's.
func (c *conn) client() netip.AddrPort {
	return c.s.Client()
}
