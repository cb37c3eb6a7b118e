package gateway

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/pipe"
)

// Session is one client connection before login, as the gateway keeps it
// for the protocol: the connection (plain or TLS), its buffered reader and
// writer, the login deadline, the limits' slots, and what the session log
// line says. A protocol reads and writes through Reader and Writer, and
// calls back for TLS (StartTLS), login (Login, Fail) and the hand-over.
type Session struct {
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
	bufs  sessionBufs // br, bw and the backends': back to the pool at the end
	isTLS bool
	// proxiedTLS: a trusted proxy in front terminated the client's TLS and
	// says so in its PROXY header; the client's link counts as encrypted
	// (AuthAllowed, routing's ClientTLS), though this connection is not.
	proxiedTLS bool

	deadline time.Time  // login timeout
	release  func()     // the limit.Conns slot
	slotAddr netip.Addr // what the slot counts against: the connection's own peer, whatever XCLIENT says
	// preLoginRelease frees the slot of Server.MaxPreLoginPerIP, at login
	// or when the session ends.
	preLoginRelease func()

	ttl      int // proxy hops the client allowed; 0: DefaultProxyTTL
	failures int
	attempts int
	// tried is the login being tried (authorization and authentication
	// names, password), for the penalty's repeat check; cleared when
	// Login returns.
	tried   struct{ account, password string }
	account string // last account tried
	// backendAccount: the name the route gave the backend instead of
	// account (Route.Login), when it differs; else "".
	backendAccount string
	backend        string // the backend of the last login attempt

	interrupted atomic.Bool // Shutdown asked the protocol to say goodbye
	mu          sync.Mutex  // guards piped against interrupt and forceClose
	piped       bool        // the connections belong to the pipe: hands off
	stopWatch   func() bool // ends the watch on ctx
	ended       bool
	reason      string // why the session ended, for the log
}

// serve runs one client connection: PROXY header, limits, implicit TLS,
// then the protocol's dialogue, then the log line.
func (s *Server) serve(ctx context.Context, c net.Conn, implicitTLS bool) {
	start := time.Now()
	conn, client, local, proxiedTLS, err := s.Proxy.HandshakeTLS(c)
	if err != nil {
		s.logger().Warn(s.name()+": PROXY header", "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	ss := &Session{
		srv: s, ctx: ctx, id: newSessionID(), start: start,
		client: client, local: local, raw: conn, conn: conn, proxiedTLS: proxiedTLS,
		release: func() {}, preLoginRelease: func() {},
	}
	ss.log = s.logger().With("session", ss.id)
	ss.bufs.pool = &s.bufs
	defer ss.bufs.release() // last: after finish and the protocol's return
	ss.setupIO()
	s.Metrics.sessionStarted()
	release, err := s.Conns.Acquire(client.Addr())
	if err != nil {
		ss.refuse(implicitTLS, "Too many connections, try again later", "limit: "+err.Error())
		return
	}
	ss.release, ss.slotAddr = release, client.Addr()
	preRelease, err := s.preLoginConns.Acquire(client.Addr())
	if err != nil {
		ss.refuse(implicitTLS, "Too many connections from your address, try again later", "pre-login limit: "+err.Error())
		return
	}
	ss.preLoginRelease = preRelease
	if !s.addSession(ss) {
		ss.End("shutdown")
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

// refuse ends a session over a limit, telling a plain client why.
func (ss *Session) refuse(implicitTLS bool, text, reason string) {
	if !implicitTLS {
		ss.srv.proto().Refuse(ss, &Error{Code: CodeLimit, Text: text})
		_ = ss.Flush()
	}
	ss.End(reason)
	ss.finish()
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents so)
	return hex.EncodeToString(b[:])
}

func (ss *Session) setupIO() {
	ss.br = ss.bufs.reader(ss.conn)
	ss.bw = ss.bufs.writer(clientWriter{ss})
}

// clientWriter writes to the session's client connection (plain or, after
// a handshake, TLS), each write within writeDeadline: a buffered reply
// that goes out on its own (pipelined commands filled the buffer) gets a
// deadline of its own, not whatever an earlier Flush left.
type clientWriter struct{ ss *Session }

func (w clientWriter) Write(p []byte) (int, error) {
	_ = w.ss.conn.SetWriteDeadline(w.ss.writeDeadline())
	return w.ss.conn.Write(p)
}

// writeDeadline bounds a write to the client: writeTimeout from now, and
// before login no later than farewellGrace past the login deadline, so
// that the login timeout's own goodbye still goes out but a client that
// does not read cannot keep its session beyond it.
func (ss *Session) writeDeadline() time.Time {
	d := time.Now().Add(writeTimeout)
	if !ss.deadline.IsZero() {
		if limit := ss.deadline.Add(farewellGrace); limit.Before(d) {
			d = limit
		}
	}
	return d
}

func (ss *Session) run(implicitTLS bool) {
	ss.deadline = ss.start.Add(orDuration(ss.srv.LoginTimeout, DefaultLoginTimeout))
	ss.setReadDeadline()
	if implicitTLS {
		cfg := ss.srv.current().tls
		if cfg == nil {
			ss.End("no TLS configuration for implicit TLS")
			return
		}
		if err := ss.handshake(ss.raw, cfg); err != nil {
			ss.End("client TLS handshake: " + err.Error())
			return
		}
	}
	ss.srv.proto().Serve(ss)
	if !ss.ended {
		ss.End("protocol ended the session")
	}
}

// setReadDeadline applies the login deadline, or an immediate one when
// Shutdown interrupted us (checked after setting, so no interrupt is lost).
func (ss *Session) setReadDeadline() {
	_ = ss.conn.SetReadDeadline(ss.deadline)
	if ss.interrupted.Load() {
		_ = ss.raw.SetReadDeadline(time.Unix(1, 0))
	}
}

// interrupt is called by Shutdown: a session waiting for a command sees
// its read fail with os.ErrDeadlineExceeded (Interrupted is then true) and
// says goodbye; one logging in finishes that first.
func (ss *Session) interrupt() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.interrupted.Store(true)
	if !ss.piped {
		_ = ss.raw.SetReadDeadline(time.Unix(1, 0))
	}
}

// forceClose is called when Shutdown's deadline has passed.
func (ss *Session) forceClose() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.piped {
		_ = ss.raw.Close()
	}
}

// handshake runs a server-side TLS handshake on c and switches the
// session to it.
func (ss *Session) handshake(c net.Conn, cfg *tls.Config) error {
	_ = c.SetWriteDeadline(ss.deadline)
	tc := tls.Server(c, cfg)
	if err := tc.HandshakeContext(ss.ctx); err != nil {
		return err
	}
	ss.conn, ss.isTLS = tc, true
	ss.setReadDeadline()
	ss.br.Reset(ss.conn)
	ss.bw.Reset(clientWriter{ss})
	return nil
}

// StartTLS upgrades the client connection to TLS, after the protocol sent
// (and flushed) its go-ahead. Whatever the client sent after its STARTTLS
// command is already in the read buffer. It must never be read as
// commands (CVE-2011-0411: a man in the middle would have injected them
// into the plaintext stream, and they would then run as if sent inside
// TLS). It is replayed as the first bytes of the TLS handshake instead,
// like go-imap's imapserver does: a well-behaved client sent nothing (or
// the start of its ClientHello, which is then used as such); anything
// else fails the handshake. On failure the session has ended.
func (ss *Session) StartTLS() error {
	cfg := ss.srv.current().tls
	if cfg == nil || ss.isTLS {
		ss.End("STARTTLS without TLS configuration or on TLS")
		return ErrSessionEnded
	}
	var pending []byte
	if n := ss.br.Buffered(); n > 0 {
		b, _ := ss.br.Peek(n) // cannot fail: n bytes are buffered
		pending = append([]byte(nil), b...)
		ss.log.Debug(ss.srv.name()+": bytes pipelined after STARTTLS go to the TLS handshake", "bytes", n)
	}
	if err := ss.handshake(pipe.WithPrefix(ss.conn, pending), cfg); err != nil {
		ss.End("client STARTTLS handshake: " + err.Error())
		return err
	}
	return nil
}

// Context is the session's context: done at Shutdown's deadline (or when
// ServeConn's context ends).
func (ss *Session) Context() context.Context { return ss.ctx }

// ID is the session's random identifier, in every log line of it (and
// passed to backends that take it, as IMAP's x-session-id).
func (ss *Session) ID() string { return ss.id }

// Logger logs with the session's ID.
func (ss *Session) Logger() *slog.Logger { return ss.log }

// Client is the client's address (from the PROXY header, if any).
func (ss *Session) Client() netip.AddrPort { return ss.client }

// Local is the address the client connected to (from the PROXY header,
// if any, or as a trusted proxy in front said: SetLocal).
func (ss *Session) Local() netip.AddrPort { return ss.local }

// Server is the session's Server, for its settings (Hostname, ...).
func (ss *Session) Server() *Server { return ss.srv }

// Reader reads from the client; its buffer goes to the backend at the
// hand-over, into the TLS handshake at StartTLS.
func (ss *Session) Reader() *bufio.Reader { return ss.br }

// Writer buffers what goes to the client until Flush.
func (ss *Session) Writer() *bufio.Writer { return ss.bw }

// Flush sends what was written, each write within a write timeout (and,
// before login, within the login timeout); after the hand-over it does
// nothing.
func (ss *Session) Flush() error {
	if ss.piped {
		return nil
	}
	return ss.bw.Flush()
}

// TLS reports whether the client connection is on TLS.
func (ss *Session) TLS() bool { return ss.isTLS }

// CanStartTLS reports whether STARTTLS may be offered now.
func (ss *Session) CanStartTLS() bool { return !ss.isTLS && ss.srv.current().tls != nil }

// AuthAllowed reports whether a login may be tried now: on TLS (here, or
// terminated by a trusted proxy that says so in its PROXY v2 header), or
// with Server.AllowPlaintextAuth.
func (ss *Session) AuthAllowed() bool { return ss.secured() || ss.srv.AllowPlaintextAuth }

// secured reports whether the client's link is encrypted: TLS here, or
// TLS a trusted proxy terminated.
func (ss *Session) secured() bool { return ss.isTLS || ss.proxiedTLS }

// Mechanisms are the SASL mechanisms to offer now (nil when AuthAllowed
// is false): PLAIN and LOGIN, and XOAUTH2 and OAUTHBEARER with
// Server.OAuth.
func (ss *Session) Mechanisms() []string {
	if !ss.AuthAllowed() {
		return nil
	}
	m := []string{sasl.Plain, sasl.Login}
	if ss.srv.OAuth {
		m = append(m, sasl.XOAuth2, sasl.OAuthBearer)
	}
	return m
}

// MechanismSupported reports whether mech (upper case) may be used.
func (ss *Session) MechanismSupported(mech string) bool { return sasl.Supported(mech, ss.srv.OAuth) }

// Interrupted reports whether Shutdown (or the end of ServeConn's context)
// asked the session to end: a read that failed with
// os.ErrDeadlineExceeded was then cut short for it, not by the login
// timeout.
func (ss *Session) Interrupted() bool { return ss.interrupted.Load() }

// End marks the session as ended, for reason (in the log line); the first
// reason counts.
func (ss *Session) End(reason string) {
	if !ss.ended {
		ss.ended, ss.reason = true, reason
	}
}

// Ended reports whether the session has ended.
func (ss *Session) Ended() bool { return ss.ended }

// finish closes a session that did not reach the pipe and logs it.
func (ss *Session) finish() {
	if ss.piped {
		return
	}
	_ = ss.conn.Close()
	ss.preLoginRelease()
	ss.release()
	ss.srv.Metrics.sessionEnded()
	ss.logEntry(ss.backend, false).write(pipe.Result{}, time.Since(ss.start), ss.reason)
}

// logEntry is what the session's one log line says besides the pipe's
// result: kept alone by a piped session, which holds nothing else of its
// pre-login state.
type logEntry struct {
	log                   *slog.Logger
	start                 time.Time // the client's connect, which the duration counts from
	protocol              string
	client, account       string
	backendAccount        string // "" unless a route gave the backend another name
	backend               string
	clientTLS, backendTLS bool
}

func (ss *Session) logEntry(backend string, backendTLS bool) logEntry {
	return logEntry{
		log: ss.log, start: ss.start, protocol: ss.srv.name(),
		client: ss.client.String(), account: ss.account, backendAccount: ss.backendAccount, backend: backend,
		clientTLS: ss.isTLS, backendTLS: backendTLS,
	}
}

// is reports whether account is the session's: its account, or the
// name the backend logged in as instead (a route's Login).
func (e logEntry) is(account string) bool {
	return account != "" && (account == e.account || account == e.backendAccount)
}

// write logs the session's line.
func (e logEntry) write(r pipe.Result, d time.Duration, reason string) {
	attrs := []any{
		"client", e.client,
		"account", e.account,
	}
	if e.backendAccount != "" {
		attrs = append(attrs, "backend_account", e.backendAccount)
	}
	attrs = append(attrs,
		"backend", e.backend,
		"client_tls", e.clientTLS,
		"backend_tls", e.backendTLS,
		"bytes_to_backend", r.BytesAToB,
		"bytes_to_client", r.BytesBToA,
		"duration", d.Round(time.Millisecond),
		"reason", reason,
	)
	if r.Err != nil {
		attrs = append(attrs, "err", r.Err.Error())
	}
	attrs = append(attrs, "protocol", e.protocol)
	e.log.Info(e.protocol+" session", attrs...)
}
