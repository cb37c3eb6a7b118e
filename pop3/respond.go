package pop3

import (
	"errors"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pop3/wire"
)

// errPrivacyRequired answers USER, PASS and AUTH on a plain link without
// AllowPlaintextAuth, in Dovecot's words.
var errPrivacyRequired = &gateway.Error{Code: gateway.CodePrivacyRequired, Text: "Plaintext authentication disallowed on non-secure connections"}

// fail renders a login's error as the command's -ERR, in this one place:
// gateway.Error's code becomes the response code (RFC 2449, RFC 3206; a
// route source's or the backend's own POP3 code when it is one), its text
// made safe for the wire. After a failed login that was the connection's
// last allowed one, the connection is closed. gateway.ErrSessionEnded
// says nothing.
func (c *conn) fail(err error) {
	var e *gateway.Error
	if !errors.As(err, &e) {
		if !errors.Is(err, gateway.ErrSessionEnded) {
			c.s.End("login: " + err.Error())
		}
		return
	}
	if e.Code == gateway.CodeCancelled { // as the proxy's own exchange answers
		if e.Detail == gateway.DetailBase64 {
			c.err("", wire.TextBadBase64)
		} else {
			c.err("", textCancelled)
		}
		return
	}
	c.respond(errorResponse(e))
	if e.Code == gateway.CodeAuthFailed && c.s.TooManyFailures() {
		c.flush()
		c.s.End("too many login failures")
	}
}

// errorResponse is the -ERR line of e.
func errorResponse(e *gateway.Error) *wire.Response {
	return &wire.Response{Status: wire.StatusErr, Code: responseCode(e), Text: responseText(e)}
}

// relayedCodes are the response codes a backend or route source may name
// for a failed login (RFC 2449 section 8, RFC 3206); others (an IMAP code
// from an auth_http service shared with IMAP, say) mean nothing to a POP3
// client and give way to the code of the failure's kind.
var relayedCodes = map[string]bool{
	wire.CodeAuth: true, wire.CodeSysTemp: true, wire.CodeSysPerm: true,
	wire.CodeInUse: true, wire.CodeLoginDelay: true,
}

// responseCode is the POP3 response code of e.
func responseCode(e *gateway.Error) string {
	if d := strings.ToUpper(strings.TrimSpace(e.Detail)); relayedCodes[d] {
		return d
	}
	switch e.Code {
	case gateway.CodeUnavailable, gateway.CodeLimit:
		return wire.CodeSysTemp
	}
	return wire.CodeAuth // CodeAuthFailed, CodePrivacyRequired (as Dovecot)
}

// responseText is e's text, safe for a response line, or the default of
// its code.
func responseText(e *gateway.Error) string {
	if t := wire.SafeText(e.Text); t != "" {
		return t
	}
	if e.Code == gateway.CodeUnavailable || e.Code == gateway.CodeLimit {
		return gateway.TextUnavailable
	}
	return gateway.TextAuthFailed
}
