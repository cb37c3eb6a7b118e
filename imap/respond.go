package imap

import (
	"errors"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap/wire"
)

// errPrivacyRequired answers a login on a plain link without
// AllowPlaintextAuth.
var errPrivacyRequired = &gateway.Error{Code: gateway.CodePrivacyRequired, Text: "Plaintext authentication is disabled, use STARTTLS first"}

// respond renders a login's error as the command's tagged NO, in this one
// place: gateway.Error's code becomes the response code (a route source's
// or the backend's own code when it is one), its text made safe for the
// wire. After a failed login that was the connection's last allowed one,
// the session ends with BYE. gateway.ErrSessionEnded says nothing.
func (c *conn) respond(tag string, err error) {
	var e *gateway.Error
	if !errors.As(err, &e) {
		if !errors.Is(err, gateway.ErrSessionEnded) {
			c.s.End("login: " + err.Error())
		}
		return
	}
	if e.Code == gateway.CodeCancelled { // RFC 9051 section 6.2.2: BAD
		text := textCancelled
		if e.Detail == gateway.DetailBase64 {
			text = textBadBase64
		}
		c.tagged(tag, "BAD", "", text)
		return
	}
	c.tagged(tag, "NO", responseCode(e), responseText(e))
	if e.Code == gateway.CodeAuthFailed && c.s.TooManyFailures() {
		c.bye("Too many invalid login attempts", "too many login failures")
	}
}

// responseCode is the IMAP response code of e: its Detail when that is
// one ("CODE" or "CODE args"), else the code of e.Code (RFC 5530).
func responseCode(e *gateway.Error) string {
	if code, args, _ := strings.Cut(e.Detail, " "); isResponseCode(strings.ToUpper(code)) {
		if args = wire.SafeText(args); args != "" {
			return strings.ToUpper(code) + " " + args
		}
		return strings.ToUpper(code)
	}
	switch e.Code {
	case gateway.CodeUnavailable:
		return "UNAVAILABLE"
	case gateway.CodePrivacyRequired:
		return "PRIVACYREQUIRED"
	case gateway.CodeLimit:
		return "LIMIT"
	case gateway.CodeInUse:
		return "INUSE"
	}
	return "AUTHENTICATIONFAILED"
}

// responseText is e's text, safe for a response line, or the default of
// its code.
func responseText(e *gateway.Error) string {
	if t := wire.SafeText(e.Text); t != "" {
		return t
	}
	if e.Code == gateway.CodeUnavailable {
		return gateway.TextUnavailable
	}
	return gateway.TextAuthFailed
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
