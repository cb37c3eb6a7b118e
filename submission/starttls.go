package submission

import "github.com/pipegate/pipegate/submission/wire"

// cmdStartTLS upgrades the client connection to TLS (RFC 3207). What the
// client sent after the STARTTLS line goes into the TLS handshake, never
// read as commands (gateway.Session.StartTLS, CVE-2011-0411); the client
// must then say EHLO again.
func (c *conn) cmdStartTLS(cmd *wire.Command) {
	switch {
	case cmd.Params != "":
		c.reply(501, "5.5.4", "Syntax: STARTTLS")
		return
	case c.s.TLS():
		c.reply(503, "5.5.1", "TLS already active")
		return
	case !c.s.CanStartTLS():
		c.reply(454, "4.7.0", "TLS not available")
		return
	}
	c.reply(220, "2.0.0", "Ready to start TLS")
	if c.flush() != nil {
		c.s.End("client write: " + c.werr.Error())
		return
	}
	if c.s.StartTLS() != nil {
		return // the session has ended
	}
	// RFC 3207 section 4.2: forget what the client said before TLS.
	c.helo, c.esmtp = "", false
}
