package pop3

import "github.com/pipegate/pipegate/pop3/wire"

// cmdSTLS upgrades the client connection to TLS (RFC 2595 section 4).
// What the client sent after the STLS line goes into the TLS handshake,
// never read as commands (gateway.Session.StartTLS, CVE-2011-0411).
func (c *conn) cmdSTLS(cmd *wire.Command) {
	switch {
	case len(cmd.Args) != 0:
		c.err("", "STLS takes no arguments")
		return
	case c.s.TLS():
		c.err("", "TLS is already active")
		return
	case !c.s.CanStartTLS():
		c.err("", "STLS is not available")
		return
	}
	c.ok("Begin TLS negotiation now.")
	if c.flush() != nil {
		return
	}
	// A USER given before STLS does not carry over (RFC 2595 section 4:
	// the client discards what it knew; so does the server).
	c.user, c.haveUser = "", false
	_ = c.s.StartTLS() // on failure the session has ended
}
