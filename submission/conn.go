package submission

import (
	"errors"
	"io"
	"net"
	"os"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/xclient"
	"github.com/pipegate/pipegate/submission/wire"
)

// conn is the SMTP state of one client session before AUTH; the gateway's
// Session holds the connection and everything that is not SMTP's own.
type conn struct {
	srv  *Server
	host string
	s    *gateway.Session
	rd   *wire.Reader

	helo     string // the client's EHLO/HELO name; "" before it and after STARTTLS
	esmtp    bool   // the client said EHLO, not HELO
	commands int
	werr     error // first write error
	buf      []byte
	// trusted: the client is in Server.TrustedNetworks and may send
	// XCLIENT; the address it gives (ADDR, PORT) becomes the session's
	// client (gateway.Session.SetClient).
	trusted bool
}

func newConn(srv *Server, host string, s *gateway.Session) *conn {
	c := &conn{srv: srv, host: host, s: s, rd: wire.NewReader(s.Reader())}
	c.rd.MaxAuthCommand = orInt(srv.MaxAuthCommand, DefaultMaxAuthCommand)
	c.trusted = xclient.Trusted(srv.TrustedNetworks, s.Client().Addr())
	return c
}

// run greets the client and reads commands until the session ends (QUIT,
// an error, or the hand-over after AUTH).
func (c *conn) run() {
	c.greet()
	if c.flush() != nil {
		c.s.End("client write: " + c.werr.Error())
		return
	}
	maxCommands := orInt(c.srv.MaxCommandsBeforeAuth, DefaultMaxCommandsBeforeAuth)
	for !c.s.Ended() {
		cmd, err := c.rd.ReadCommand()
		if err == nil || errors.As(err, new(*wire.Error)) {
			if c.commands++; c.commands > maxCommands {
				c.goodbye("4.7.0", "Too many commands before authentication", "too many commands before login")
				return
			}
		}
		if err != nil {
			c.readFailed(err)
		} else {
			c.dispatch(cmd)
		}
		if c.s.Ended() {
			return // whoever ended it said what was to be said (after Handover, nothing may be)
		}
		// Replies to pipelined commands go out together (RFC 2920
		// section 3.2), before the next read would wait for the client:
		// the client may be waiting for them to send the rest of a line.
		if !c.rd.LineBuffered() {
			c.flush()
		}
		if c.werr != nil {
			c.s.End("client write: " + c.werr.Error())
		}
	}
}

// greet writes the 220 greeting.
func (c *conn) greet() {
	greeting := c.srv.Greeting
	if greeting == "" {
		greeting = DefaultGreeting
	}
	c.reply(220, "", c.host+" ESMTP "+wire.SafeText(greeting))
}

func (c *conn) dispatch(cmd *wire.Command) {
	switch cmd.Verb {
	case "EHLO":
		c.cmdHello(cmd, true)
	case "HELO":
		c.cmdHello(cmd, false)
	case "STARTTLS":
		c.cmdStartTLS(cmd)
	case "AUTH":
		c.cmdAuth(cmd)
	case "NOOP":
		c.reply(250, "2.0.0", "OK")
	case "RSET":
		if cmd.Params != "" {
			c.reply(501, "5.5.4", "Syntax: RSET")
			return
		}
		c.reply(250, "2.0.0", "OK")
	case "QUIT":
		c.reply(221, "2.0.0", "Bye")
		c.flush()
		c.s.End("quit")
	case "MAIL", "RCPT", "DATA", "BURL", "VRFY", "EXPN", "ETRN":
		// The backend answers them once logged in (RFC 4954 section 6:
		// 530 for any command the policy wants authentication for).
		c.reply(530, "5.7.0", "Authentication required")
	case "BDAT":
		// The chunk that follows cannot be told from commands; CHUNKING
		// was not offered, so the client is broken or hostile.
		c.reply(530, "5.7.0", "Authentication required")
		c.flush()
		c.s.End("BDAT before authentication")
	case "XCLIENT":
		if c.trusted {
			c.cmdXClient(cmd)
			break
		}
		// Only a trusted proxy may set the address the backend trusts
		// from this one.
		c.reply(502, "5.5.1", "Command not implemented")
	case "HELP", "TURN", "ATRN", "XFORWARD":
		// XFORWARD above all: the client must not set the address the
		// backend trusts from the proxy.
		c.reply(502, "5.5.1", "Command not implemented")
	default:
		c.reply(500, "5.5.2", "Command unrecognized")
	}
}

// readFailed handles an error from reading the client.
func (c *conn) readFailed(err error) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		c.write(we.Reply())
		if we.Fatal {
			c.flush()
			c.s.End("client protocol error: " + we.Text)
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.s.Interrupted() {
			c.goodbye("4.3.2", "Server shutting down", "shutdown")
		} else {
			c.goodbye("4.4.2", "Timeout before authentication", "login timeout")
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.flush() // a half-closed client still reads its replies
		c.s.End("client closed")
	case errors.Is(err, net.ErrClosed) && c.s.Interrupted():
		c.s.End("shutdown (forced)")
	default:
		c.s.End("client read: " + err.Error())
	}
}

// goodbye sends "421 <host> text" and ends the session (RFC 5321 section
// 3.8: the server may close with 421 at any time).
func (c *conn) goodbye(enhanced, text, reason string) {
	c.reply(421, enhanced, c.host+" "+text)
	c.flush()
	c.s.End(reason)
}

// reply writes one reply; lines are cleaned of CR, LF and NUL by wire.
func (c *conn) reply(code int, enhanced string, lines ...string) {
	c.buf = appendReply(c.buf[:0], code, enhanced, lines...)
	c.write(c.buf)
}

// appendReply appends a reply; an enhanced code that does not fit the
// code is left out.
func appendReply(dst []byte, code int, enhanced string, lines ...string) []byte {
	b, err := (&wire.Reply{Code: code, Enhanced: enhanced, Lines: lines}).Append(dst)
	if err != nil {
		b, _ = (&wire.Reply{Code: code, Lines: lines}).Append(dst)
	}
	return b
}

// formatReply is appendReply to a new slice.
func formatReply(code int, enhanced string, lines ...string) []byte {
	return appendReply(nil, code, enhanced, lines...)
}

func (c *conn) write(b []byte) {
	if c.werr == nil {
		_, c.werr = c.s.Writer().Write(b)
	}
}

// flush sends what was written.
func (c *conn) flush() error {
	if c.werr != nil {
		return c.werr
	}
	c.werr = c.s.Flush()
	return c.werr
}
