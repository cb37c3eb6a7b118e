package pop3

import (
	"github.com/pipegate/pipegate/pop3/wire"
)

// ownCapabilities are the pre-login capabilities the gateway decides;
// Server.Capabilities cannot add them.
var ownCapabilities = map[string]bool{
	"USER": true, "SASL": true, "STLS": true, "RESP-CODES": true,
	"AUTH-RESP-CODE": true, "PIPELINING": true, "IMPLEMENTATION": true,
}

// capabilities returns the pre-login capabilities for the session's
// current state (RFC 2449, RFC 2595, RFC 5034). USER and SASL only where a
// login may be tried; PIPELINING because commands are read one at a time
// from the stream and whatever follows a successful login goes to the
// backend unread.
func (c *conn) capabilities() wire.Capabilities {
	var caps wire.Capabilities
	if c.s.AuthAllowed() {
		caps = append(caps, wire.Capability{Name: "USER"})
	}
	if mechs := c.s.Mechanisms(); len(mechs) > 0 {
		caps = append(caps, wire.Capability{Name: "SASL", Args: mechs})
	}
	if c.s.CanStartTLS() {
		caps = append(caps, wire.Capability{Name: "STLS"})
	}
	caps = append(caps,
		wire.Capability{Name: "RESP-CODES"},
		wire.Capability{Name: "AUTH-RESP-CODE"},
		wire.Capability{Name: "PIPELINING"})
	for _, extra := range wire.ParseCapa(c.srv.Capabilities) {
		if !ownCapabilities[extra.Name] {
			caps = append(caps, extra)
		}
	}
	return caps
}

func (c *conn) cmdCapa(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		c.err("", "CAPA takes no arguments")
		return
	}
	c.respond(&wire.Response{Status: wire.StatusOK, Text: "Capability list follows", Lines: c.capabilities().Lines()})
}
