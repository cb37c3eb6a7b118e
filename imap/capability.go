package imap

import (
	"strings"

	"github.com/pipegate/pipegate/imap/wire"
)

// caps returns the pre-login capabilities for the session's current state.
func (c *conn) caps() []string {
	caps := []string{"IMAP4rev1"}
	if c.srv.IMAP4rev2 {
		caps = append(caps, "IMAP4rev2")
	}
	caps = append(caps, "SASL-IR", "LITERAL+", "ID")
	if c.s.CanStartTLS() {
		caps = append(caps, "STARTTLS")
	}
	if mechs := c.s.Mechanisms(); mechs != nil {
		for _, m := range mechs {
			caps = append(caps, "AUTH="+m)
		}
	} else {
		caps = append(caps, "LOGINDISABLED")
	}
	return caps
}

func (c *conn) cmdCapability(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		c.tagged(cmd.Tag, "BAD", "", "CAPABILITY takes no arguments")
		return
	}
	c.writef("* CAPABILITY %s\r\n", strings.Join(c.caps(), " "))
	c.tagged(cmd.Tag, "OK", "", "CAPABILITY completed")
}
