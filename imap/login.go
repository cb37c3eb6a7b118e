package imap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"pipegate/imap/wire"
	"pipegate/route"
)

// credentials are what a client logged in with. The password is never
// logged.
type credentials struct {
	method string // for route.Request.AuthMethod: "login", "plain", "xoauth2", "oauthbearer"
	authz  string // PLAIN authorization identity when it differs from user, else ""
	user   string
	pass   string
	// For XOAUTH2 and OAUTHBEARER: the mechanism and the client's initial
	// response (base64), passed to the backend unchanged.
	mech   string
	saslIR string
}

// account is the account to route: the authorization identity when there
// is one (a master user logging in as someone), else the user.
func (c credentials) account() string {
	if c.authz != "" {
		return c.authz
	}
	return c.user
}

// cmdLogin handles LOGIN user password.
func (ss *session) cmdLogin(cmd *wire.Command) {
	if !ss.authAllowed() {
		ss.tagged(cmd.Tag, "NO", "PRIVACYREQUIRED", "Plaintext authentication is disabled, use STARTTLS first")
		return
	}
	args, err := cmd.AStrings(2)
	if err != nil {
		ss.tagged(cmd.Tag, "BAD", "", err.(*wire.Error).Text)
		return
	}
	ss.login(cmd.Tag, credentials{method: "login", user: args[0], pass: args[1]})
}

// login routes the account, logs in to a backend of the route and, on
// success, hands both connections to the pipe.
func (ss *session) login(tag string, cred credentials) {
	started := time.Now()
	ss.attempts++
	ss.account = cred.account()
	ss.backend = ""
	ip := ss.client.Addr()
	if err := ss.srv.Penalty.Wait(ss.ctx, ip); err != nil {
		ss.done, ss.reason = true, "shutdown (during login delay)"
		return
	}
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
		Account:    cred.account(),
		Password:   cred.pass,
		AuthMethod: cred.method,
		Attempt:    ss.attempts,
		ClientAddr: ss.client,
		LocalAddr:  ss.local,
	})
	cancel()
	var denied *route.Denied
	switch {
	case err == nil:
	case errors.Is(err, route.ErrNotFound):
		ss.log.Info("imap: login: no route", "account", cred.account())
		ss.loginFailed(tag, "", started, "AUTHENTICATIONFAILED", "Authentication failed.")
		return
	case errors.As(err, &denied):
		ss.log.Info("imap: login: denied by router", "account", cred.account(), "text", denied.Text)
		if denied.Wait > 0 && !sleepCtx(ss.ctx, min(denied.Wait, time.Minute)) {
			ss.done, ss.reason = true, "shutdown (during login delay)"
			return
		}
		text := wire.SafeText(denied.Text)
		if text == "" {
			text = "Authentication failed."
		}
		ss.loginFailed(tag, "", started, "AUTHENTICATIONFAILED", text)
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
	var lastErr error
	for _, b := range rt.Backends {
		ss.backend = b.Addr
		bc, err := ss.connectBackend(b)
		if err != nil {
			lastErr = err
			ss.log.Warn("imap: backend unavailable", "backend", b.String(), "account", cred.account(), "err", err)
			ss.srv.Metrics.login(b.Addr, "unavailable", 0)
			continue
		}
		resp, err := bc.login(ss, cred, rt.Login)
		if err != nil {
			bc.close()
			lastErr = err
			ss.log.Warn("imap: backend login failed", "backend", b.String(), "account", cred.account(), "err", err)
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
			ss.log.Warn("imap: backend login unavailable", "backend", b.String(), "account", cred.account(), "text", wire.SafeText(resp.Text))
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
		ss.loginFailed(tag, b.Addr, started, wire.SafeText(code), text)
		return
	}
	ss.unavailable(tag, fmt.Errorf("all %d backends failed, last: %w", len(rt.Backends), lastErr))
}

// loginFailed answers a failed login, counts it for the penalty and the
// per-connection limit.
func (ss *session) loginFailed(tag, backend string, started time.Time, code, text string) {
	ss.srv.Penalty.Fail(ss.ctx, ss.client.Addr())
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

// sleepCtx waits d or until ctx is done; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
