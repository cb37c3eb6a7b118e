package sieve

import "github.com/pipegate/pipegate/sieve/wire"

// cmdStartTLS upgrades the client connection to TLS and then sends the
// capabilities again, unasked, as RFC 5804 section 2.2 requires (now with
// the SASL mechanisms a plain link did not offer). What the client sent
// after the STARTTLS line goes into the TLS handshake, never read as
// commands (gateway.Session.StartTLS, CVE-2011-0411).
func (c *conn) cmdStartTLS(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		c.reply("NO", "", "STARTTLS takes no arguments")
		return
	}
	if c.s.TLS() {
		c.reply("NO", "", "TLS is already active")
		return
	}
	if !c.s.CanStartTLS() {
		c.reply("NO", "", "STARTTLS is not available")
		return
	}
	c.reply("OK", "", "Begin TLS negotiation now.")
	if c.flush() != nil {
		return
	}
	if c.s.StartTLS() != nil {
		return // the session has ended
	}
	c.writeCaps()
	c.reply("OK", "", "TLS negotiation successful.")
}
