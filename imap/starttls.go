package imap

import (
	"github.com/pipegate/pipegate/imap/wire"
)

// cmdStartTLS upgrades the client connection to TLS. What the client sent
// after the STARTTLS line goes into the TLS handshake, never read as
// commands (gateway.Session.StartTLS, CVE-2011-0411).
func (c *conn) cmdStartTLS(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		c.tagged(cmd.Tag, "BAD", "", "STARTTLS takes no arguments")
		return
	}
	if c.s.TLS() {
		c.tagged(cmd.Tag, "BAD", "", "TLS is already active")
		return
	}
	if !c.s.CanStartTLS() {
		c.tagged(cmd.Tag, "NO", "", "STARTTLS is not available")
		return
	}
	c.tagged(cmd.Tag, "OK", "", "Begin TLS negotiation now")
	if c.flush() != nil {
		return
	}
	_ = c.s.StartTLS() // on failure the session has ended
}
