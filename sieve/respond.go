package sieve

import (
	"errors"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/sieve/wire"
)

// respond renders a login's error as NO, in this one place: the text made
// safe for the wire, with the response code of RFC 5804 section 1.3 that
// fits (TRYLATER when no backend could take the login, ENCRYPT-NEEDED for
// a login on a plain link; a route source's or the backend's own code when
// it is one of the login codes). A wrong password is a plain NO, as
// Dovecot answers it. After a failed login that was the connection's last
// allowed one, the session ends with BYE. gateway.ErrSessionEnded says
// nothing.
func (c *conn) respond(err error) {
	var e *gateway.Error
	if !errors.As(err, &e) {
		if !errors.Is(err, gateway.ErrSessionEnded) {
			c.s.End("login: " + err.Error())
		}
		return
	}
	if e.Code == gateway.CodeCancelled { // as the proxy's own exchange answers
		if e.Detail == gateway.DetailBase64 {
			c.reply("NO", "", textBadBase64)
		} else {
			c.reply("NO", "", textCancelled)
		}
		return
	}
	c.reply("NO", responseCode(e), responseText(e))
	if e.Code == gateway.CodeAuthFailed && c.s.TooManyFailures() {
		c.bye("", "Too many invalid authentication attempts", "too many login failures")
	}
}

// loginCodes are the response codes of RFC 5804 section 1.3 that can
// answer a login.
var loginCodes = map[string]bool{
	"AUTH-TOO-WEAK":     true,
	"ENCRYPT-NEEDED":    true,
	"TRANSITION-NEEDED": true,
	"TRYLATER":          true,
}

// responseCode is the ManageSieve response code of e, or "".
func responseCode(e *gateway.Error) string {
	if d := strings.ToUpper(e.Detail); loginCodes[d] {
		return d
	}
	switch e.Code {
	case gateway.CodeUnavailable, gateway.CodeLimit:
		return "TRYLATER"
	case gateway.CodePrivacyRequired:
		return "ENCRYPT-NEEDED"
	}
	return ""
}

// responseText is e's text, safe for a response, or the default of its
// code.
func responseText(e *gateway.Error) string {
	if t := wire.SafeText(e.Text); t != "" {
		return t
	}
	if e.Code == gateway.CodeUnavailable {
		return gateway.TextUnavailable
	}
	return gateway.TextAuthFailed
}
