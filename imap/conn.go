package imap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/internal/xclient"
)

// conn is IMAP's state of one client session before login; the gateway's
// Session holds the connection and everything that is not IMAP's own.
type conn struct {
	srv *Server
	s   *gateway.Session
	rd  *wire.Reader

	clientID []idField // the client's own ID fields, passed on to backends
	// trusted: the client is in Server.TrustedNetworks; its ID's
	// x-originating-ip and x-originating-port become the session's client.
	trusted  bool
	commands int
	werr     error // first write error
}

func newConn(srv *Server, s *gateway.Session) *conn {
	c := &conn{srv: srv, s: s}
	c.rd = wire.NewReader(s.Reader())
	c.rd.MaxLine = orInt(srv.MaxLineLength, DefaultMaxLineLength)
	c.rd.MaxLiteral = DefaultMaxLiteral
	if srv.MaxLiteral > 0 {
		c.rd.MaxLiteral = srv.MaxLiteral
	}
	c.rd.Continue = c.continueLiteral
	c.trusted = xclient.Trusted(srv.TrustedNetworks, s.Client().Addr())
	return c
}

// continueLiteral answers a synchronizing literal announcement.
func (c *conn) continueLiteral(int64) error {
	c.writef("+ Ready for literal data\r\n")
	return c.flush()
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
	c.writef("* OK [CAPABILITY %s] %s\r\n", strings.Join(c.caps(), " "), wire.SafeText(greeting))
	if c.flush() != nil {
		c.s.End("client write: " + c.werr.Error())
		return
	}
	maxCommands := orInt(c.srv.MaxCommandsBeforeLogin, DefaultMaxCommandsBeforeLogin)
	for !c.s.Ended() {
		cmd, err := c.rd.ReadCommand()
		if err == nil || errors.As(err, new(*wire.Error)) {
			if c.commands++; c.commands > maxCommands {
				c.bye("Too many commands before login", "too many commands before login")
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
	case "ID":
		c.cmdID(cmd)
	case "LOGIN":
		c.cmdLogin(cmd)
	case "AUTHENTICATE":
		c.cmdAuthenticate(cmd)
	case "ENABLE", "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE",
		"UNSUBSCRIBE", "LIST", "LSUB", "NAMESPACE", "STATUS", "APPEND", "IDLE",
		"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY",
		"MOVE", "UID", "GETQUOTA", "GETQUOTAROOT", "SETQUOTA", "GETACL", "SETACL",
		"MYRIGHTS", "LISTRIGHTS", "DELETEACL", "GETMETADATA", "SETMETADATA", "COMPRESS",
		"UNAUTHENTICATE", "SORT", "THREAD", "NOTIFY":
		c.tagged(cmd.Tag, "BAD", "", cmd.Name+" is not allowed before login")
	default:
		name := cmd.Name
		if len(name) > 32 {
			name = name[:32] + "..."
		}
		c.tagged(cmd.Tag, "BAD", "", "Unknown command "+name)
	}
	c.flush()
}

// readFailed handles an error from reading the client.
func (c *conn) readFailed(err error) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		tag := we.Tag
		if tag == "" {
			tag = "*"
		}
		c.tagged(tag, "BAD", we.Code, we.Text)
		if we.Fatal {
			c.bye("Cannot continue after this error", "client protocol error: "+we.Text)
			return
		}
		c.flush()
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.s.Interrupted() {
			c.bye("Server shutting down", "shutdown")
		} else {
			c.bye("Login timeout", "login timeout")
		}
	case errors.Is(err, io.EOF):
		c.s.End("client closed")
	case errors.Is(err, net.ErrClosed) && c.s.Interrupted():
		c.s.End("shutdown (forced)")
	default:
		c.s.End("client read: " + err.Error())
	}
}

// bye sends an untagged BYE and ends the session.
func (c *conn) bye(text, reason string) {
	c.writef("* BYE %s\r\n", text)
	c.flush()
	c.s.End(reason)
}

func (c *conn) writef(format string, args ...any) {
	if c.werr == nil {
		_, c.werr = fmt.Fprintf(c.s.Writer(), format, args...)
	}
}

// tagged writes "TAG TYPE [CODE] TEXT".
func (c *conn) tagged(tag, typ, code, text string) {
	if code != "" {
		c.writef("%s %s [%s] %s\r\n", tag, typ, code, text)
	} else {
		c.writef("%s %s %s\r\n", tag, typ, text)
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
