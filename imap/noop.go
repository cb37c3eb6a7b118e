package imap

import "github.com/pipegate/pipegate/imap/wire"

func (ss *session) cmdNoop(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		ss.tagged(cmd.Tag, "BAD", "", "NOOP takes no arguments")
		return
	}
	ss.tagged(cmd.Tag, "OK", "", "NOOP completed")
}
