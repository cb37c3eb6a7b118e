package imap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/route"
)

// cmdLogin handles LOGIN user password.
func (ss *session) cmdLogin(cmd *wire.Command) {
	started := time.Now()
	if !ss.authAllowed() {
		ss.tagged(cmd.Tag, "NO", "PRIVACYREQUIRED", "Plaintext authentication is disabled, use STARTTLS first")
		return
	}
	args, err := cmd.AStrings(2)
	if err != nil {
		ss.tagged(cmd.Tag, "BAD", "", err.(*wire.Error).Text)
		return
	}
	ss.login(cmd.Tag, sasl.Credentials{Authcid: args[0], Password: args[1]}, "login", started)
}

// login decides the account (gateway.AccountRules: the one name that is
// routed, limited, logged and sent to the backend), routes it, logs in to
// a backend of the route and, on success, hands both connections to the
// pipe. method names the login for route sources: "login", or the SASL
// mechanism in lower case. Every failure, whatever its kind, goes through
// loginFailed.
func (ss *session) login(tag string, creds sasl.Credentials, method string, started time.Time) {
	ss.attempts++
	ss.account = ""
	ss.backend = ""
	ip := ss.client.Addr()
	if err := ss.srv.Penalty.Wait(ss.ctx, ip); err != nil {
		ss.done, ss.reason = true, "shutdown (during login delay)"
		return
	}
	lg, err := ss.srv.Accounts.Decide(creds)
	if err != nil {
		var refused *gateway.Refused
		errors.As(err, &refused)
		ss.log.Info("imap: login: name refused", "name", quoteName(creds.Authcid), "why", refused.Reason)
		ss.loginFailed(tag, "", started, gateway.FailName, 0, "AUTHENTICATIONFAILED", refused.Text)
		return
	}
	ss.account = lg.Account
	if ttl := ss.proxyTTL(); ttl <= 1 {
		ss.srv.Metrics.login("", "unavailable", time.Since(started))
		ss.unavailable(tag, fmt.Errorf("x-proxy-ttl is %d: proxies appear to be looping", ttl))
		return
	}
	dyn := ss.srv.current()
	if dyn.router == nil {
		ss.srv.Metrics.login("", "unavailable", time.Since(started))
		ss.unavailable(tag, errors.New("no router configured"))
		return
	}
	lctx, cancel := context.WithTimeout(ss.ctx, orDuration(ss.srv.BackendTimeout, DefaultBackendTimeout))
	rt, err := dyn.router.Lookup(lctx, route.Request{
		Protocol:   "imap",
		Account:    lg.Account,
		Password:   lg.Password,
		AuthMethod: method,
		Attempt:    ss.attempts,
		ClientAddr: ss.client,
		LocalAddr:  ss.local,
		ClientTLS:  ss.isTLS,
	})
	cancel()
	var denied *route.Denied
	switch {
	case err == nil:
	case errors.Is(err, route.ErrNotFound):
		ss.log.Info("imap: login: no route", "account", lg.Account)
		ss.loginFailed(tag, "", started, gateway.FailNoRoute, 0, "AUTHENTICATIONFAILED", "Authentication failed.")
		return
	case errors.As(err, &denied):
		ss.log.Info("imap: login: denied by router", "account", lg.Account, "text", denied.Text)
		text := wire.SafeText(denied.Text)
		if text == "" {
			text = "Authentication failed."
		}
		code := "AUTHENTICATIONFAILED"
		if c := strings.ToUpper(denied.Code); isResponseCode(c) {
			code = c
		}
		ss.loginFailed(tag, "", started, gateway.FailDenied, denied.Wait, code, text)
		return
	default:
		ss.srv.Metrics.login("", "unavailable", time.Since(started))
		ss.unavailable(tag, fmt.Errorf("route lookup: %w", err))
		return
	}
	if len(rt.Backends) == 0 {
		ss.srv.Metrics.login("", "unavailable", time.Since(started))
		ss.unavailable(tag, errors.New("route has no backends"))
		return
	}
	if strings.ContainsAny(rt.Login+rt.Password, "\x00\r\n") {
		ss.srv.Metrics.login("", "unavailable", time.Since(started))
		ss.unavailable(tag, errors.New("the route's login name or password holds NUL, CR or LF"))
		return
	}
	var lastErr error
	for _, b := range rt.Backends {
		ss.backend = b.Addr
		bc, err := ss.connectBackend(b)
		if err != nil {
			lastErr = err
			ss.log.Warn("imap: backend unavailable", "backend", b.String(), "account", lg.Account, "err", err)
			ss.srv.Metrics.login(b.Addr, "unavailable", 0)
			continue
		}
		resp, err := bc.login(ss, lg, rt)
		if err != nil {
			bc.close()
			lastErr = err
			ss.log.Warn("imap: backend login failed", "backend", b.String(), "account", lg.Account, "err", err)
			ss.srv.Metrics.login(b.Addr, "unavailable", 0)
			if ss.done {
				return // the client went away during an exchange it took part in
			}
			continue
		}
		if resp.Type == "OK" {
			ss.loginOK(tag, bc, resp, started)
			return
		}
		bc.close()
		if resp.Code == "UNAVAILABLE" {
			// The backend's own trouble (its auth service, say), not the
			// client's: no penalty, and the next backend may do better.
			lastErr = fmt.Errorf("backend %s: NO [UNAVAILABLE] %s", b.Addr, wire.SafeText(resp.Text))
			ss.log.Warn("imap: backend login unavailable", "backend", b.String(), "account", lg.Account, "text", wire.SafeText(resp.Text))
			ss.srv.Metrics.login(b.Addr, "unavailable", 0)
			continue
		}
		code := resp.Code
		if resp.CodeArgs != "" {
			code += " " + resp.CodeArgs
		}
		text := wire.SafeText(resp.Text)
		if text == "" {
			text = "Authentication failed."
		}
		ss.loginFailed(tag, b.Addr, started, gateway.FailPassword, 0, wire.SafeText(code), text)
		return
	}
	ss.unavailable(tag, fmt.Errorf("all %d backends failed, last: %w", len(rt.Backends), lastErr))
}

// isResponseCode reports whether c can stand as a response code: 1 to 32
// letters, digits and '-' (AUTHENTICATIONFAILED, UNAVAILABLE, ...).
func isResponseCode(c string) bool {
	if c == "" || len(c) > 32 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !('A' <= c[i] && c[i] <= 'Z' || '0' <= c[i] && c[i] <= '9' || c[i] == '-') {
			return false
		}
	}
	return true
}

// quoteName cuts a refused name for the log (the handler escapes it).
func quoteName(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return s
}

// loginFailed answers a failed login, whatever its kind, on the one
// schedule of gateway.Failures: counted by the penalty, held until the
// failure delay after the command; then it counts for the per-connection
// limit.
func (ss *session) loginFailed(tag, backend string, started time.Time, kind string, atLeast time.Duration, code, text string) {
	if !ss.srv.failures().Fail(ss.ctx, ss.client.Addr(), started, kind, atLeast) {
		ss.done, ss.reason = true, "shutdown (during login delay)"
		return
	}
	ss.srv.Metrics.login(backend, "failed", time.Since(started))
	ss.failures++
	ss.tagged(tag, "NO", code, text)
	if ss.failures >= orInt(ss.srv.MaxLoginFailures, DefaultMaxLoginFailures) {
		ss.bye("Too many invalid login attempts", "too many login failures")
	}
}

// unavailable answers a login that no backend could take.
func (ss *session) unavailable(tag string, err error) {
	if err != nil {
		ss.log.Warn("imap: login unavailable", "account", ss.account, "err", err)
	}
	ss.tagged(tag, "NO", "UNAVAILABLE", "Server unavailable, try again later")
}

// loginOK tells the client it is in, with the backend's post-login
// capabilities, and hands both connections to the pipe.
func (ss *session) loginOK(tag string, bc *backendConn, resp *wire.Response, started time.Time) {
	caps := resp.Caps()
	if caps == nil {
		var err error
		if caps, err = bc.capability(ss); err != nil {
			bc.close()
			ss.log.Warn("imap: backend CAPABILITY after login", "backend", bc.b.String(), "err", err)
			ss.srv.Metrics.login(bc.b.Addr, "unavailable", time.Since(started))
			ss.unavailable(tag, nil)
			return
		}
	}
	text := wire.SafeText(resp.Text)
	if text == "" {
		text = "Logged in"
	}
	// The backend accepted the credentials: forget the address's failures
	// before the client hears of it.
	ss.srv.Penalty.Success(ss.ctx, ss.client.Addr())
	ss.srv.Metrics.login(bc.b.Addr, "ok", time.Since(started))
	ss.tagged(tag, "OK", "CAPABILITY "+wire.SafeText(strings.Join(caps, " ")), text)
	if err := ss.flush(); err != nil {
		bc.close()
		ss.done, ss.reason = true, "client write: "+err.Error()
		return
	}
	ss.handover(bc)
}
