package sieve

import "github.com/pipegate/pipegate/sieve/wire"

// cmdLogout handles LOGOUT (RFC 5804 section 2.3): OK, then the
// connection is closed.
func (c *conn) cmdLogout(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		c.reply("NO", "", "LOGOUT takes no arguments")
		return
	}
	c.reply("OK", "", "Logout completed.")
	c.flush()
	c.s.End("logout")
}
