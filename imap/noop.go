package imap

import "github.com/pipegate/pipegate/imap/wire"

func (c *conn) cmdNoop(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		c.tagged(cmd.Tag, "BAD", "", "NOOP takes no arguments")
		return
	}
	c.tagged(cmd.Tag, "OK", "", "NOOP completed")
}
