package sieve

import (
	"errors"
	"io"
	"net"
	"os"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/xclient"
	"github.com/pipegate/pipegate/sieve/wire"
)

// conn is ManageSieve's state of one client session before login; the
// gateway's Session holds the connection and everything that is not
// ManageSieve's own.
type conn struct {
	srv *Server
	s   *gateway.Session
	rd  *wire.Reader

	commands int
	werr     error // first write error
	// trusted: the client is in Server.TrustedNetworks and may send
	// XCLIENT; the address it gives (ADDR, PORT) becomes the session's
	// client (gateway.Session.SetClient).
	trusted bool
}

func newConn(srv *Server, s *gateway.Session) *conn {
	c := &conn{srv: srv, s: s}
	c.rd = wire.NewReader(s.Reader())
	c.rd.MaxLine = orInt(srv.MaxLineLength, DefaultMaxLineLength)
	c.rd.MaxLiteral = DefaultMaxLiteral
	if srv.MaxLiteral > 0 {
		c.rd.MaxLiteral = srv.MaxLiteral
	}
	c.trusted = xclient.Trusted(srv.TrustedNetworks, s.Client().Addr())
	return c
}

// run sends the capability greeting and reads commands until the session
// ends.
func (c *conn) run() {
	greeting := c.srv.Greeting
	if greeting == "" {
		greeting = DefaultGreeting
		if c.srv.Hostname != "" {
			greeting = c.srv.Hostname + " " + greeting
		}
	}
	c.writeCaps()
	c.reply("OK", "", wire.SafeText(greeting))
	if c.flush() != nil {
		c.s.End("client write: " + c.werr.Error())
		return
	}
	maxCommands := orInt(c.srv.MaxCommandsBeforeLogin, DefaultMaxCommandsBeforeLogin)
	for !c.s.Ended() {
		cmd, err := c.rd.ReadCommand()
		if err == nil || errors.As(err, new(*wire.Error)) {
			if c.commands++; c.commands > maxCommands {
				c.bye("", "Too many commands before login", "too many commands before login")
				return
			}
		}
		if err != nil {
			c.readFailed(err)
			continue
		}
		c.dispatch(cmd)
		if c.werr != nil {
			c.s.End("client write: " + c.werr.Error())
		}
	}
}

func (c *conn) dispatch(cmd *wire.Command) {
	switch cmd.Name {
	case "CAPABILITY":
		c.cmdCapability(cmd)
	case "NOOP":
		c.cmdNoop(cmd)
	case "LOGOUT":
		c.cmdLogout(cmd)
	case "STARTTLS":
		c.cmdStartTLS(cmd)
	case "AUTHENTICATE":
		c.cmdAuthenticate(cmd)
	case "HAVESPACE", "PUTSCRIPT", "LISTSCRIPTS", "SETACTIVE", "GETSCRIPT", "DELETESCRIPT",
		"RENAMESCRIPT", "CHECKSCRIPT", "UNAUTHENTICATE":
		c.reply("NO", "", cmd.Name+" is not allowed before login, AUTHENTICATE first")
	case "XCLIENT":
		if c.trusted {
			c.cmdXClient(cmd)
			break
		}
		c.unknown(cmd)
	default:
		c.unknown(cmd)
	}
	c.flush()
}

// unknown answers a command the proxy does not know; XCLIENT from a
// client outside Server.TrustedNetworks too: only a trusted proxy may
// tell the client's address.
func (c *conn) unknown(cmd *wire.Command) {
	name := cmd.Name
	if len(name) > 32 {
		name = name[:32] + "..."
	}
	c.reply("NO", "", "Unknown command "+name)
}

// readFailed handles an error from reading the client.
func (c *conn) readFailed(err error) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		c.write(we.Reply()) // NO, or BYE when the stream cannot be followed
		c.flush()
		if we.Fatal {
			c.s.End("client protocol error: " + we.Text)
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.s.Interrupted() {
			c.bye("", "Server shutting down", "shutdown")
		} else {
			c.bye("", "Disconnected for inactivity", "login timeout")
		}
	case errors.Is(err, io.EOF):
		c.s.End("client closed")
	case errors.Is(err, net.ErrClosed) && c.s.Interrupted():
		c.s.End("shutdown (forced)")
	default:
		c.s.End("client read: " + err.Error())
	}
}

// bye sends BYE and ends the session.
func (c *conn) bye(code, text, reason string) {
	c.reply("BYE", code, text)
	c.flush()
	c.s.End(reason)
}

func (c *conn) write(b []byte) {
	if c.werr == nil {
		_, c.werr = c.s.Writer().Write(b)
	}
}

// reply writes a status response: TYPE [(CODE)] "text".
func (c *conn) reply(typ, code, text string) {
	c.write((&wire.Response{Type: typ, Code: code, Text: text}).Append(nil))
}

// flush sends what was written.
func (c *conn) flush() error {
	if c.werr != nil {
		return c.werr
	}
	c.werr = c.s.Flush()
	return c.werr
}
