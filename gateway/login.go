package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/route"
)

// DefaultProxyTTL is the number of proxy hops a login may still take when
// the client did not say otherwise, as Dovecot's login proxy: the protocol
// passes the backend one less than the session's ProxyTTL (IMAP: the
// x-proxy-ttl of ID; XCLIENT: TTL). A client (another pipegate or a
// Dovecot proxy in front) may lower it (SetProxyTTL), never raise it, so
// it need not be trusted. A login that arrives with a TTL of 1 or less is
// not proxied further: the client is told the server is unavailable, which
// ends a routing loop (a route that points back at a proxy of the chain)
// after a few hops instead of looping until connections run out.
const DefaultProxyTTL = 5

// ProxyTTL is the session's hop budget: DefaultProxyTTL, or less when the
// client said so.
func (ss *Session) ProxyTTL() int {
	if ss.ttl > 0 && ss.ttl < DefaultProxyTTL {
		return ss.ttl
	}
	return DefaultProxyTTL
}

// SetProxyTTL records the hop budget the client sent; 0 (or a value at or
// above the default) leaves the default.
func (ss *Session) SetProxyTTL(n int) { ss.ttl = n }

// TooManyFailures reports whether the session had its
// Server.MaxLoginFailures failed logins: the protocol says goodbye after
// answering the last one.
func (ss *Session) TooManyFailures() bool {
	return ss.failures >= orInt(ss.srv.MaxLoginFailures, DefaultMaxLoginFailures)
}

// Login decides the account (AccountRules: the one name that is routed,
// limited, logged and sent to the backend), routes it, and logs in to the
// first backend of the route that takes it, by login (the protocol's
// side). method names the login for route sources: "login", or the SASL
// mechanism in lower case; started is when the login command arrived.
//
// On success it returns the logged-in backend: the protocol answers the
// client and calls Handover (or Backend.Close). Otherwise the error is an
// *Error to render (after the failure delay, for refused credentials), or
// ErrSessionEnded.
func (ss *Session) Login(creds sasl.Credentials, method string, started time.Time, login BackendLogin) (*Backend, error) {
	ss.attempts++
	// An OAuth token is in Fields ("auth=Bearer ..."): part of the attempt.
	ss.tried.account = creds.Authzid + "\x00" + creds.Authcid
	ss.tried.password = creds.Password + "\x00" + strings.Join(creds.Fields, "\x00")
	defer func() { ss.tried.account, ss.tried.password = "", "" }()
	ss.account, ss.backendAccount = "", ""
	ss.backend = ""
	name := ss.srv.name()
	ip := ss.client.Addr()
	// The penalty's delay, the route lookup and the backends all fit in
	// the login timeout, which runs from connect to login.
	wctx, cancel := context.WithDeadline(ss.ctx, ss.deadline)
	err := ss.srv.Penalty.Wait(wctx, ip)
	cancel()
	switch {
	case ss.ctx.Err() != nil:
		ss.End("shutdown (during login delay)")
		return nil, ErrSessionEnded
	case err != nil:
		return nil, ss.unavailable(started, fmt.Errorf("%w during the login delay of a penalised address", errLoginTimeout))
	}
	lg, err := ss.srv.Accounts.Decide(creds)
	if err != nil {
		var refused *Refused
		errors.As(err, &refused)
		ss.log.Info(name+": login: name refused", "name", cutName(creds.Authcid), "why", refused.Reason)
		return nil, ss.fail("", started, FailName, 0, &Error{Code: CodeAuthFailed, Text: refused.Text})
	}
	ss.account = lg.Account
	if ttl := ss.ProxyTTL(); ttl <= 1 {
		return nil, ss.unavailable(started, fmt.Errorf("proxy TTL is %d: proxies appear to be looping", ttl))
	}
	dyn := ss.srv.current()
	if dyn.router == nil {
		return nil, ss.unavailable(started, errors.New("no router configured"))
	}
	req := route.Request{
		Protocol:   name,
		Account:    lg.Account,
		Password:   lg.Password,
		AuthMethod: method,
		Attempt:    ss.attempts,
		ClientAddr: ss.client,
		LocalAddr:  ss.local,
		ClientTLS:  ss.secured(),
	}
	// The TLS details are this connection's own: TLS a trusted proxy in
	// front ended (proxiedTLS) has none here.
	if tc, ok := ss.conn.(*tls.Conn); ok && ss.isTLS {
		st := tc.ConnectionState()
		req.ClientTLSVersion, req.ClientTLSCipher = st.Version, st.CipherSuite
	}
	lctx, cancel := context.WithDeadline(ss.ctx, ss.backendDeadline())
	rt, err := dyn.router.Lookup(lctx, req)
	cancel()
	var denied *route.Denied
	switch {
	case err == nil:
	case errors.Is(err, route.ErrNotFound):
		ss.log.Info(name+": login: no route", "account", lg.Account)
		return nil, ss.fail("", started, FailNoRoute, 0, &Error{Code: CodeAuthFailed, Text: TextAuthFailed})
	case errors.As(err, &denied):
		ss.log.Info(name+": login: denied by router", "account", lg.Account, "text", denied.Text)
		return nil, ss.fail("", started, FailDenied, denied.Wait, &Error{Code: CodeAuthFailed, Text: denied.Text, Detail: denied.Code})
	case !time.Now().Before(ss.deadline) && ss.ctx.Err() == nil:
		return nil, ss.unavailable(started, fmt.Errorf("%w during the route lookup: %w", errLoginTimeout, err))
	default:
		return nil, ss.unavailable(started, fmt.Errorf("route lookup: %w", err))
	}
	if len(rt.Backends) == 0 {
		return nil, ss.unavailable(started, errors.New("route has no backends"))
	}
	if strings.ContainsAny(rt.Login+rt.Password, "\x00\r\n") {
		return nil, ss.unavailable(started, errors.New("the route's login name or password holds NUL, CR or LF"))
	}
	if rt.Login != lg.Account {
		ss.backendAccount = rt.Login // logged beside the account: the backend logs this one in
	}
	// A route may name backends of several protocols (an account's IMAP and
	// POP3 on one host, its submission on another): this session uses its
	// own protocol's, in the route's order.
	all := len(rt.Backends)
	rt.Backends = slices.DeleteFunc(slices.Clone(rt.Backends), func(b route.Backend) bool { return b.Pool == "" && b.Protocol != name })
	if len(rt.Backends) == 0 {
		ss.log.Info(name+": login: no "+name+" backend in the route", "account", lg.Account, "backends", all)
		return nil, ss.fail("", started, FailNoRoute, 0, &Error{Code: CodeAuthFailed, Text: TextAuthFailed})
	}
	return ss.loginBackends(lg, rt, started, login)
}

// loginBackends tries the route's backends in order.
func (ss *Session) loginBackends(lg Login, rt route.Route, started time.Time, login BackendLogin) (*Backend, error) {
	name := ss.srv.name()
	var lastErr error
	tried := 0
	for _, rb := range rt.Backends {
		if !time.Now().Before(ss.deadline) {
			// The login timeout runs from connect to login: no further
			// backend is tried once it passed.
			lastErr = fmt.Errorf("%w before backend %s", errLoginTimeout, rb)
			break
		}
		tried++
		var lease Lease
		var poolName, poolUser string
		if rb.Pool != "" {
			// Affinity is by the name the backend logs in: the one its
			// shared storage knows.
			user := lg.Account
			if rt.Login != "" {
				user = rt.Login
			}
			ss.backend = rb.String()
			poolName, poolUser = rb.Pool, user
			pb, l, err := ss.poolBackend(rb, user)
			if err != nil {
				lastErr = err
				ss.log.Warn(name+": pool unavailable", "backend", rb.String(), "account", lg.Account, "err", err)
				ss.srv.Metrics.login(rb.String(), "unavailable", 0)
				continue
			}
			rb, lease = pb, l
		}
		ss.backend = rb.Addr
		b, err := ss.dial(rb)
		if err != nil {
			if lease != nil {
				lease.End()
			}
			lastErr = err
			ss.log.Warn(name+": backend unavailable", "backend", rb.String(), "account", lg.Account, "err", err)
			ss.srv.Metrics.login(rb.Addr, "unavailable", 0)
			continue
		}
		b.lease, b.pool, b.poolUser = lease, poolName, poolUser
		var kicked func() bool
		if lease != nil {
			kicked = abortOnKick(b.conn, lease)
		}
		err = login(b, lg, rt)
		if kicked != nil && kicked() {
			// A move of the user kicked the lease during the dialogue:
			// this member must not get (or keep) the user's login.
			b.Close()
			lastErr = fmt.Errorf("backend %s: %w", rb.Addr, errKicked)
			ss.log.Warn(name+": login dropped, the user is being moved", "backend", rb.String(), "account", lg.Account)
			ss.srv.Metrics.login(rb.Addr, "unavailable", 0)
			continue
		}
		if err == nil && lease != nil {
			if err := lease.Start(ss.ctx); err != nil {
				// The assignment changed while the login ran (a move):
				// this member must not keep the user.
				b.Close()
				lastErr = fmt.Errorf("backend %s: %w", rb.Addr, err)
				ss.log.Warn(name+": login dropped, assignment changed", "backend", rb.String(), "account", lg.Account, "err", err)
				ss.srv.Metrics.login(rb.Addr, "unavailable", 0)
				continue
			}
		}
		if err == nil {
			// The backend accepted the credentials: forget the address's
			// failures before the client hears of it.
			ss.srv.Penalty.Success(ss.ctx, ss.client.Addr())
			ss.srv.Metrics.login(rb.Addr, "ok", time.Since(started))
			return b, nil
		}
		b.Close()
		var refused *Error
		switch {
		case !errors.As(err, &refused):
			lastErr = fmt.Errorf("backend %s: %w", rb.Addr, err)
			ss.log.Warn(name+": backend login failed", "backend", rb.String(), "account", lg.Account, "err", err)
			ss.srv.Metrics.login(rb.Addr, "unavailable", 0)
			if ss.ended {
				return nil, ErrSessionEnded // the client went away during an exchange it took part in
			}
		case refused.Code == CodeCancelled:
			// A relayed challenge is the backend's refusal of the token
			// (XOAUTH2 and OAUTHBEARER have no other): the client, which
			// has seen it, cancelled a failed login. It counts as one (else
			// a token guesser would go at full speed), answered with the
			// protocol's own cancel; no other backend.
			ss.log.Info(name+": backend login failed, the client cancelled after the backend's challenge", "backend", rb.String(), "account", lg.Account)
			return nil, ss.fail(rb.Addr, started, FailPassword, 0, refused)
		case refused.Code == CodeInUse:
			// The credentials were right: no penalty and no failure.
			ss.log.Info(name+": backend login refused, account in use", "backend", rb.String(), "account", lg.Account, "code", refused.Detail)
			ss.srv.Metrics.login(rb.Addr, "in_use", time.Since(started))
			return nil, refused
		case refused.Code == CodeUnavailable:
			// The backend's own trouble (its auth service, say), not the
			// client's: no penalty, and the next backend may do better.
			lastErr = fmt.Errorf("backend %s: %w", rb.Addr, err)
			ss.log.Warn(name+": backend login unavailable", "backend", rb.String(), "account", lg.Account, "text", refused.Text)
			ss.srv.Metrics.login(rb.Addr, "unavailable", 0)
		default:
			if refused.Text == "" {
				refused.Text = TextAuthFailed
			}
			return nil, ss.fail(rb.Addr, started, FailPassword, 0, refused)
		}
	}
	ss.log.Warn(name+": login unavailable", "account", ss.account, "err", fmt.Errorf("all %d backends failed, last: %w", len(rt.Backends), lastErr))
	if tried == 0 { // the login timeout passed first: an attempt of no backend
		ss.srv.Metrics.login("", "unavailable", time.Since(started))
	} else { // each backend counted its attempt: the answer's time
		ss.srv.Metrics.answered(time.Since(started))
	}
	return nil, &Error{Code: CodeUnavailable, Text: TextUnavailable}
}

// errLoginTimeout: the login timeout passed while backends were tried.
var errLoginTimeout = errors.New("login timeout")

// errKicked: a move of the user (or the loss of the shared store) kicked
// its lease during a backend login.
var errKicked = errors.New("the user's lease was kicked during the login")

// abortOnKick ends the backend dialogue on c at once (its deadline set in
// the past) should lease be kicked before the returned func is called;
// that func disarms it and reports whether the kick came. After it, the
// piped session's own OnKick takes over, and Lease.Start refuses a login
// a move overtook.
func abortOnKick(c net.Conn, lease Lease) (kicked func() bool) {
	var mu sync.Mutex
	armed, came := true, false
	lease.OnKick(func(error) {
		mu.Lock()
		defer mu.Unlock()
		if armed {
			came = true
			_ = c.SetDeadline(time.Unix(1, 0))
		}
	})
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		armed = false
		return came
	}
}

// cutName cuts a refused name for the log (the handler escapes it).
func cutName(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return s
}

// Fail answers a failed login that ended before Login (a SASL message the
// gateway cannot use, say) on the schedule of every failure: it returns
// the *Error to render, text for the client, or ErrSessionEnded.
func (ss *Session) Fail(started time.Time, kind, text string) error {
	return ss.fail("", started, kind, 0, &Error{Code: CodeAuthFailed, Text: text})
}

// fail answers a failed login, whatever its kind, on the one schedule of
// Failures: counted by the penalty, held until the failure delay after the
// command; then it counts for the per-connection limit.
func (ss *Session) fail(backend string, started time.Time, kind string, atLeast time.Duration, e *Error) error {
	if !ss.srv.failures().FailAttempt(ss.ctx, ss.client.Addr(), ss.tried.account, ss.tried.password, started, kind, atLeast) {
		ss.End("shutdown (during login delay)")
		return ErrSessionEnded
	}
	ss.srv.Metrics.login(backend, "failed", time.Since(started))
	ss.failures++
	return e
}

// unavailable answers a login that no backend could take.
func (ss *Session) unavailable(started time.Time, err error) error {
	ss.srv.Metrics.login("", "unavailable", time.Since(started))
	ss.log.Warn(ss.srv.name()+": login unavailable", "account", ss.account, "err", err)
	return &Error{Code: CodeUnavailable, Text: TextUnavailable}
}

// SetClient replaces the client's address with the one a trusted proxy
// in front said it serves (XCLIENT ADDR/PORT, as Dovecot's
// login_trusted_networks): the session's log line, the login penalty,
// route lookups and the address passed to the backend use it from now
// on. The connection limits stay counted against the proxy's address,
// which holds the connection.
func (ss *Session) SetClient(addr netip.AddrPort) {
	if addr.Addr().IsValid() {
		ss.client = addr
	}
}

// SetLocal replaces the address the client connected to with the one a
// trusted proxy in front said its client connected to (XCLIENT
// DESTADDR/DESTPORT, IMAP ID x-connected-ip/x-connected-port, as
// Dovecot's login_trusted_networks): route lookups (Request.LocalAddr)
// and the local address passed to the backend (x-connected-ip,
// DESTADDR, a PROXY header's destination) use it from now on. Port 0
// (the proxy named no port) keeps the port the session had, the
// connection's unless set before. The connection limits still count the
// proxy's address; the session's log line names no local address.
func (ss *Session) SetLocal(addr netip.AddrPort) {
	if !addr.Addr().IsValid() {
		return
	}
	if addr.Port() == 0 {
		addr = netip.AddrPortFrom(addr.Addr(), ss.local.Port())
	}
	ss.local = addr
}
