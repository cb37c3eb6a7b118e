package submission

import (
	"errors"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/submission/wire"
)

// errPrivacyRequired answers AUTH on a plain link without
// AllowPlaintextAuth (RFC 4954 section 6).
var errPrivacyRequired = &gateway.Error{Code: gateway.CodePrivacyRequired}

// respond renders a login's error as the reply to AUTH, in this one
// place: the code and enhanced code of e.Code (or of e.Detail when a route
// source named an SMTP one, as nginx's Auth-Error-Code "535 5.7.0"), e's
// text made safe for the wire or SMTP's own text for the gateway's
// defaults. A 421 (a route source may name one) ends the session, as does
// a failed login that was the connection's last allowed one (421 too).
// gateway.ErrSessionEnded says nothing.
func (c *conn) respond(err error) {
	var e *gateway.Error
	if !errors.As(err, &e) {
		if !errors.Is(err, gateway.ErrSessionEnded) {
			c.s.End("login: " + err.Error())
		}
		return
	}
	if e.Code == gateway.CodeCancelled { // RFC 4954 section 4
		if e.Detail == gateway.DetailBase64 {
			c.reply(501, "5.5.2", wire.TextBadBase64)
		} else {
			c.reply(501, "5.0.0", textCancelled)
		}
		return
	}
	code, enhanced, text := render(e)
	if code == 421 {
		// "closing transmission channel" (RFC 5321 sections 3.8, 4.2.3):
		// a route source's 421 ends the session as the gateway's own.
		c.goodbye(enhanced, text, "login refused with 421")
		return
	}
	c.reply(code, enhanced, text)
	if e.Code == gateway.CodeAuthFailed && c.s.TooManyFailures() {
		c.goodbye("4.7.0", "Too many authentication failures", "too many login failures")
	}
}

// render gives the reply for e.
func render(e *gateway.Error) (code int, enhanced, text string) {
	switch e.Code {
	case gateway.CodeUnavailable:
		code, enhanced, text = 454, "4.7.0", "Temporary authentication failure"
	case gateway.CodePrivacyRequired:
		code, enhanced, text = 538, "5.7.11", "Encryption required for requested authentication mechanism"
	case gateway.CodeLimit:
		code, enhanced, text = 421, "4.7.0", "Too many connections"
	default:
		code, enhanced, text = 535, "5.7.8", "Authentication credentials invalid"
	}
	if dc, de, ok := detailCode(e.Detail); ok {
		if de == "" && dc/100 == code/100 {
			de = enhanced // the class fits: keep the kind's own enhanced code
		}
		code, enhanced = dc, de
	}
	if t := wire.SafeText(e.Text); t != "" && t != gateway.TextAuthFailed && t != gateway.TextUnavailable {
		text = t
	}
	return code, enhanced, text
}

// detailCode parses "CODE [ENHANCED]" with a 4xx or 5xx code; an enhanced
// code that does not fit is dropped.
func detailCode(d string) (int, string, bool) {
	f := strings.Fields(d)
	if len(f) == 0 || len(f[0]) != 3 {
		return 0, "", false
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 400 || n > 559 {
		return 0, "", false
	}
	enhanced := ""
	if len(f) > 1 {
		if _, err := (&wire.Reply{Code: n, Enhanced: f[1]}).Append(nil); err == nil {
			enhanced = f[1]
		}
	}
	return n, enhanced, true
}
