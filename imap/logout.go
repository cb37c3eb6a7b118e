package imap

import "github.com/pipegate/pipegate/imap/wire"

func (c *conn) cmdLogout(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		c.tagged(cmd.Tag, "BAD", "", "LOGOUT takes no arguments")
		return
	}
	c.writef("* BYE Logging out\r\n")
	c.tagged(cmd.Tag, "OK", "", "LOGOUT completed")
	c.flush()
	c.s.End("logout")
}
