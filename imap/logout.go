package imap

import "github.com/pipegate/pipegate/imap/wire"

func (ss *session) cmdLogout(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		ss.tagged(cmd.Tag, "BAD", "", "LOGOUT takes no arguments")
		return
	}
	ss.writef("* BYE Logging out\r\n")
	ss.tagged(cmd.Tag, "OK", "", "LOGOUT completed")
	ss.flush()
	ss.done, ss.reason = true, "logout"
}
