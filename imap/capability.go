package imap

import (
	"strings"

	"github.com/pipegate/pipegate/imap/wire"
)

// caps returns the pre-login capabilities for the session's current state.
func (ss *session) caps() []string {
	caps := []string{"IMAP4rev1"}
	if ss.srv.IMAP4rev2 {
		caps = append(caps, "IMAP4rev2")
	}
	caps = append(caps, "SASL-IR", "LITERAL+", "ID")
	if !ss.isTLS && ss.srv.current().tls != nil {
		caps = append(caps, "STARTTLS")
	}
	if ss.authAllowed() {
		caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN")
		if ss.srv.OAuth {
			caps = append(caps, "AUTH=XOAUTH2", "AUTH=OAUTHBEARER")
		}
	} else {
		caps = append(caps, "LOGINDISABLED")
	}
	return caps
}

func (ss *session) cmdCapability(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		ss.tagged(cmd.Tag, "BAD", "", "CAPABILITY takes no arguments")
		return
	}
	ss.writef("* CAPABILITY %s\r\n", strings.Join(ss.caps(), " "))
	ss.tagged(cmd.Tag, "OK", "", "CAPABILITY completed")
}
