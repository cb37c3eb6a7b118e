package imap

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/imap/wire"
)

// session is one client connection before login.
type session struct {
	srv    *Server
	ctx    context.Context
	id     string
	log    *slog.Logger
	start  time.Time
	client netip.AddrPort
	local  netip.AddrPort

	raw   net.Conn // as accepted, after any PROXY header
	conn  net.Conn // raw, or TLS over it
	br    *bufio.Reader
	bw    *bufio.Writer
	rd    *wire.Reader
	isTLS bool

	deadline time.Time // login timeout
	release  func()    // the limit.Conns slot
	// preLoginRelease frees the slot of Server.MaxPreLoginPerIP, at login
	// or when the session ends.
	preLoginRelease func()

	clientID []idField // the client's own ID fields, passed on to backends
	ttl      int       // x-proxy-ttl the client sent by ID; 0: none
	commands int
	failures int
	attempts int
	account  string // last account tried

	interrupted atomic.Bool // Shutdown asked us to say BYE
	mu          sync.Mutex  // guards piped against interrupt and forceClose
	piped       bool        // the connections belong to the pipe: hands off
	stopWatch   func() bool // ends the watch on ctx
	done        bool        // stop reading commands
	reason      string      // why the session ended, for the log
	backend     string      // the backend of the last login attempt
	werr        error       // first write error
}

// serve runs the dialogue with one client.
func (s *Server) serve(ctx context.Context, c net.Conn, implicitTLS bool) {
	start := time.Now()
	conn, client, local, err := s.Proxy.Handshake(c)
	if err != nil {
		s.logger().Warn("imap: PROXY header", "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	ss := &session{
		srv: s, ctx: ctx, id: newSessionID(), start: start,
		client: client, local: local, raw: conn, conn: conn,
		release: func() {}, preLoginRelease: func() {},
	}
	ss.log = s.logger().With("session", ss.id)
	s.Metrics.sessionStarted()
	release, err := s.Conns.Acquire(client.Addr())
	if err != nil {
		ss.reason = "limit: " + err.Error()
		if !implicitTLS {
			ss.setupIO()
			ss.writef("* BYE Too many connections, try again later\r\n")
			ss.flush()
		}
		ss.finish()
		return
	}
	ss.release = release
	preRelease, err := s.preLoginConns.Acquire(client.Addr())
	if err != nil {
		ss.reason = "pre-login limit: " + err.Error()
		if !implicitTLS {
			ss.setupIO()
			ss.writef("* BYE Too many connections from your address, try again later\r\n")
			ss.flush()
		}
		ss.finish()
		return
	}
	ss.preLoginRelease = preRelease
	if !s.addSession(ss) {
		ss.reason = "shutdown"
		ss.finish()
		return
	}
	defer s.removeSession(ss)
	// A cancelled ctx (ServeConn's, or Shutdown giving up) ends the
	// dialogue like Shutdown does.
	ss.stopWatch = context.AfterFunc(ctx, ss.interrupt)
	defer ss.stopWatch()
	ss.run(implicitTLS)
	ss.finish()
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents so)
	return hex.EncodeToString(b[:])
}

func (ss *session) setupIO() {
	ss.br = bufio.NewReader(ss.conn)
	ss.bw = bufio.NewWriter(ss.conn)
	ss.rd = wire.NewReader(ss.br)
	ss.rd.MaxLine = orInt(ss.srv.MaxLineLength, DefaultMaxLineLength)
	ss.rd.MaxLiteral = DefaultMaxLiteral
	if ss.srv.MaxLiteral > 0 {
		ss.rd.MaxLiteral = ss.srv.MaxLiteral
	}
	ss.rd.Continue = ss.continueLiteral
}

// continueLiteral answers a synchronizing literal announcement.
func (ss *session) continueLiteral(int64) error {
	ss.writef("+ Ready for literal data\r\n")
	return ss.flush()
}

// setReadDeadline applies the login deadline, or an immediate one when
// Shutdown interrupted us (checked after setting, so no interrupt is lost).
func (ss *session) setReadDeadline() {
	_ = ss.conn.SetReadDeadline(ss.deadline)
	if ss.interrupted.Load() {
		_ = ss.raw.SetReadDeadline(time.Unix(1, 0))
	}
}

// interrupt is called by Shutdown: a session waiting for a command says
// BYE and ends; one logging in finishes that first.
func (ss *session) interrupt() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.interrupted.Store(true)
	if !ss.piped {
		_ = ss.raw.SetReadDeadline(time.Unix(1, 0))
	}
}

// forceClose is called when Shutdown's deadline has passed.
func (ss *session) forceClose() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.piped {
		_ = ss.raw.Close()
	}
}

func (ss *session) run(implicitTLS bool) {
	ss.deadline = ss.start.Add(orDuration(ss.srv.LoginTimeout, DefaultLoginTimeout))
	ss.setReadDeadline()
	if implicitTLS {
		cfg := ss.srv.current().tls
		if cfg == nil {
			ss.reason = "no TLS configuration for implicit TLS"
			return
		}
		if err := ss.handshake(ss.raw, cfg); err != nil {
			ss.reason = "client TLS handshake: " + err.Error()
			return
		}
	}
	ss.setupIO()
	greeting := ss.srv.Greeting
	if greeting == "" {
		greeting = DefaultGreeting
		if ss.srv.Hostname != "" {
			greeting = ss.srv.Hostname + " " + greeting
		}
	}
	ss.writef("* OK [CAPABILITY %s] %s\r\n", strings.Join(ss.caps(), " "), wire.SafeText(greeting))
	if ss.flush() != nil {
		ss.reason = "client write: " + ss.werr.Error()
		return
	}
	maxCommands := orInt(ss.srv.MaxCommandsBeforeLogin, DefaultMaxCommandsBeforeLogin)
	for !ss.done {
		cmd, err := ss.rd.ReadCommand()
		if err == nil || errors.As(err, new(*wire.Error)) {
			if ss.commands++; ss.commands > maxCommands {
				ss.bye("Too many commands before login", "too many commands before login")
				return
			}
		}
		if err != nil {
			ss.readFailed(err)
			continue
		}
		ss.dispatch(cmd)
		if ss.werr != nil && !ss.done {
			ss.done, ss.reason = true, "client write: "+ss.werr.Error()
		}
	}
}

func (ss *session) dispatch(cmd *wire.Command) {
	switch cmd.Name {
	case "CAPABILITY":
		ss.cmdCapability(cmd)
	case "NOOP":
		ss.cmdNoop(cmd)
	case "LOGOUT":
		ss.cmdLogout(cmd)
	case "STARTTLS":
		ss.cmdStartTLS(cmd)
	case "ID":
		ss.cmdID(cmd)
	case "LOGIN":
		ss.cmdLogin(cmd)
	case "AUTHENTICATE":
		ss.cmdAuthenticate(cmd)
	case "ENABLE", "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE",
		"UNSUBSCRIBE", "LIST", "LSUB", "NAMESPACE", "STATUS", "APPEND", "IDLE",
		"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY",
		"MOVE", "UID", "GETQUOTA", "GETQUOTAROOT", "SETQUOTA", "GETACL", "SETACL",
		"MYRIGHTS", "LISTRIGHTS", "DELETEACL", "GETMETADATA", "SETMETADATA", "COMPRESS",
		"UNAUTHENTICATE", "SORT", "THREAD", "NOTIFY":
		ss.tagged(cmd.Tag, "BAD", "", cmd.Name+" is not allowed before login")
	default:
		name := cmd.Name
		if len(name) > 32 {
			name = name[:32] + "..."
		}
		ss.tagged(cmd.Tag, "BAD", "", "Unknown command "+name)
	}
	ss.flush()
}

// readFailed handles an error from ReadCommand.
func (ss *session) readFailed(err error) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		tag := we.Tag
		if tag == "" {
			tag = "*"
		}
		ss.tagged(tag, "BAD", we.Code, we.Text)
		if we.Fatal {
			ss.bye("Cannot continue after this error", "client protocol error: "+we.Text)
			return
		}
		ss.flush()
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ss.interrupted.Load() {
			ss.bye("Server shutting down", "shutdown")
		} else {
			ss.bye("Login timeout", "login timeout")
		}
	case errors.Is(err, io.EOF):
		ss.done, ss.reason = true, "client closed"
	case errors.Is(err, net.ErrClosed) && ss.interrupted.Load():
		ss.done, ss.reason = true, "shutdown (forced)"
	default:
		ss.done, ss.reason = true, "client read: "+err.Error()
	}
}

// bye sends an untagged BYE and ends the session.
func (ss *session) bye(text, reason string) {
	ss.writef("* BYE %s\r\n", text)
	ss.flush()
	ss.done, ss.reason = true, reason
}

// handshake runs a server-side TLS handshake on c and switches the
// session to it.
func (ss *session) handshake(c net.Conn, cfg *tls.Config) error {
	_ = c.SetWriteDeadline(ss.deadline)
	tc := tls.Server(c, cfg)
	if err := tc.HandshakeContext(ss.ctx); err != nil {
		return err
	}
	ss.conn, ss.isTLS = tc, true
	ss.setReadDeadline()
	return nil
}

func (ss *session) writef(format string, args ...any) {
	if ss.werr == nil {
		_, ss.werr = fmt.Fprintf(ss.bw, format, args...)
	}
}

// tagged writes "TAG TYPE [CODE] TEXT".
func (ss *session) tagged(tag, typ, code, text string) {
	if code != "" {
		ss.writef("%s %s [%s] %s\r\n", tag, typ, code, text)
	} else {
		ss.writef("%s %s %s\r\n", tag, typ, text)
	}
}

// flush sends what was written, within writeTimeout.
func (ss *session) flush() error {
	if ss.werr != nil {
		return ss.werr
	}
	_ = ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	ss.werr = ss.bw.Flush()
	return ss.werr
}

// finish closes a session that did not reach the pipe and logs it.
func (ss *session) finish() {
	if ss.piped {
		return
	}
	_ = ss.conn.Close()
	ss.preLoginRelease()
	ss.release()
	ss.srv.Metrics.sessionEnded()
	ss.log.Info("imap session",
		"client", ss.client.String(),
		"account", ss.account,
		"backend", ss.backend,
		"client_tls", ss.isTLS,
		"backend_tls", false,
		"bytes_to_backend", 0,
		"bytes_to_client", 0,
		"duration", time.Since(ss.start).Round(time.Millisecond),
		"reason", ss.reason)
}

// authAllowed says whether LOGIN and AUTHENTICATE may be used now.
func (ss *session) authAllowed() bool { return ss.isTLS || ss.srv.AllowPlaintextAuth }
