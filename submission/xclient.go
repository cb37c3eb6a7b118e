package submission

import (
	"errors"
	"net/netip"

	"github.com/pipegate/pipegate/submission/wire"
)

// xclientOffered are the XCLIENT attributes the EHLO reply lists to a
// trusted proxy: what the gateway uses (ADDR, PORT, DESTADDR, DESTPORT,
// SESSION for the log, TTL) and what proxies send with them (PROTO,
// HELO). ParseXClient takes Postfix's others too.
var xclientOffered = []string{"ADDR", "PORT", "PROTO", "HELO", "DESTADDR", "DESTPORT", "SESSION", "TTL"}

// cmdXClient handles XCLIENT from a trusted proxy in front (Postfix's
// XCLIENT_README, Dovecot's submission-login): ADDR and PORT are the
// address of the proxy's client, passed on to the backend in place of the
// proxy's; DESTADDR and DESTPORT are where that client connected, which
// routes (local:) see and the backend is told (XCLIENT DESTADDR, PROXY
// header) in place of the gateway's own; an attribute not given or
// [UNAVAILABLE] keeps the connection's. TTL is how many proxy hops the
// login may still take, and can only lower the session's (a loop of
// proxies ends when it reaches 1). On success the session starts again
// from the greeting, as Postfix has it: a new 220, and the client says
// EHLO again before AUTH. Bad attributes get 501 with nothing applied.
func (c *conn) cmdXClient(cmd *wire.Command) {
	x, err := wire.ParseXClient(cmd.Params)
	if err != nil {
		c.s.Logger().Info("submission: XCLIENT refused", "peer", c.s.Client().String(), "err", err)
		var we *wire.Error
		if errors.As(err, &we) {
			c.write(we.Reply())
		}
		return
	}
	x.ApplyLogged(c.s, "submission: XCLIENT from a trusted proxy")
	c.helo, c.esmtp = "", false
	c.greet()
}

// client is the address of the client as far as it is known: the one a
// trusted proxy gave with XCLIENT, else the connection's.
func (c *conn) client() netip.AddrPort {
	return c.s.Client()
}
