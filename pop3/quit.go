package pop3

import "github.com/pipegate/pipegate/pop3/wire"

// cmdQuit ends the session before login (RFC 1939 section 5: no UPDATE
// state yet, nothing to commit).
func (c *conn) cmdQuit(*wire.Command) {
	c.ok("Logging out")
	c.flush()
	c.s.End("quit")
}
