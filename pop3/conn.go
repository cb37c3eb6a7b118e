package pop3

import (
	"errors"
	"io"
	"net"
	"os"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/xclient"
	"github.com/pipegate/pipegate/pop3/wire"
)

// conn is POP3's state of one client session before login; the gateway's
// Session holds the connection and everything that is not POP3's own.
type conn struct {
	srv *Server
	s   *gateway.Session
	rd  *wire.Reader

	user     string // the name of the last USER, for PASS
	haveUser bool
	// trusted: the client is in Server.TrustedNetworks and may send
	// XCLIENT; the address it gives (ADDR, PORT) becomes the session's
	// client (gateway.Session.SetClient).
	trusted  bool
	commands int
	werr     error // first write error
}

func newConn(srv *Server, s *gateway.Session) *conn {
	c := &conn{srv: srv, s: s, rd: wire.NewReader(s.Reader())}
	c.rd.MaxLine = orInt(srv.MaxLineLength, DefaultMaxLineLength)
	c.rd.MaxAuthLine = max(orInt(srv.MaxAuthLineLength, DefaultMaxAuthLineLength), c.rd.MaxLine)
	c.trusted = xclient.Trusted(srv.TrustedNetworks, s.Client().Addr())
	c.rd.XClient = c.trusted
	return c
}

// run greets the client and reads commands until the session ends.
func (c *conn) run() {
	greeting := c.srv.Greeting
	if greeting == "" {
		greeting = DefaultGreeting
		if c.srv.Hostname != "" {
			greeting = c.srv.Hostname + " " + greeting
		}
	}
	hello := &wire.Response{Status: wire.StatusOK, Text: wire.SafeText(greeting)}
	if c.trusted {
		hello.Code = "XCLIENT" // as Dovecot tells its trusted proxies
	}
	c.respond(hello)
	if c.flush() != nil {
		c.s.End("client write: " + c.werr.Error())
		return
	}
	maxCommands := orInt(c.srv.MaxCommandsBeforeLogin, DefaultMaxCommandsBeforeLogin)
	for !c.s.Ended() {
		cmd, err := c.rd.ReadCommand()
		if err == nil || errors.As(err, new(*wire.Error)) {
			if c.commands++; c.commands > maxCommands {
				c.goodbye("", "Too many commands before login", "too many commands before login")
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
	if cmd.Name != "PASS" {
		// PASS only right after a successful USER (RFC 1939 section 7):
		// any other command, a failed USER too, forgets the name.
		c.user, c.haveUser = "", false
	}
	switch cmd.Name {
	case "CAPA":
		c.cmdCapa(cmd)
	case "STLS":
		c.cmdSTLS(cmd)
	case "USER":
		c.cmdUser(cmd)
	case "PASS":
		c.cmdPass(cmd)
	case "AUTH":
		c.cmdAuth(cmd)
	case "QUIT":
		c.cmdQuit(cmd)
	case "XCLIENT": // read only from a trusted client (wire.Reader.XClient)
		c.cmdXClient(cmd)
	case "APOP":
		// APOP needs the clear password on the proxy; no route source
		// gives one.
		c.err("", "APOP is not supported, use USER/PASS or AUTH")
	case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "LAST", "UTF8", "LANG":
		c.err("", cmd.Name+" is not allowed before login")
	default:
		c.err("", "Unknown command "+cmd.Name)
	}
	c.flush()
}

// readFailed handles an error from reading the client.
func (c *conn) readFailed(err error) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		c.write(we.Reply())
		c.flush()
		if we.Fatal {
			// Part of an over-long line is still unread: the stream
			// cannot be followed.
			c.s.End("client protocol error: " + we.Text)
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.s.Interrupted() {
			c.goodbye(wire.CodeSysTemp, "Server shutting down", "shutdown")
		} else {
			c.goodbye("", "Disconnected for inactivity", "login timeout")
		}
	case errors.Is(err, io.EOF):
		c.s.End("client closed")
	case errors.Is(err, net.ErrClosed) && c.s.Interrupted():
		c.s.End("shutdown (forced)")
	default:
		c.s.End("client read: " + err.Error())
	}
}

// goodbye sends a last -ERR and ends the session: POP3 has no unsolicited
// goodbye, the connection's close says it.
func (c *conn) goodbye(code, text, reason string) {
	c.err(code, text)
	c.flush()
	c.s.End(reason)
}

func (c *conn) write(b []byte) {
	if c.werr == nil {
		_, c.werr = c.s.Writer().Write(b)
	}
}

func (c *conn) respond(r *wire.Response) { c.write(r.Append(nil)) }

// ok writes "+OK text".
func (c *conn) ok(text string) { c.respond(&wire.Response{Status: wire.StatusOK, Text: text}) }

// err writes "-ERR [code] text".
func (c *conn) err(code, text string) {
	c.respond(&wire.Response{Status: wire.StatusErr, Code: code, Text: text})
}

// flush sends what was written.
func (c *conn) flush() error {
	if c.werr != nil {
		return c.werr
	}
	c.werr = c.s.Flush()
	return c.werr
}
