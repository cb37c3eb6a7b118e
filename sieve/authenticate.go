package sieve

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/sieve/wire"
)

// errPrivacyRequired answers AUTHENTICATE on a plain link without
// AllowPlaintextAuth, in Dovecot's words.
var errPrivacyRequired = &gateway.Error{Code: gateway.CodePrivacyRequired,
	Text: "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."}

// cmdAuthenticate handles AUTHENTICATE "mechanism" [initial-response]
// (RFC 5804 section 2.1): the initial response, the challenges and the
// client's answers are strings (quoted or literals) of base64; an answer
// "*" cancels. The mechanisms are decoded by gateway/sasl and the name
// decided by gateway.AccountRules, as for every protocol.
func (c *conn) cmdAuthenticate(cmd *wire.Command) {
	args, err := cmd.Strings(1, 2)
	if err != nil {
		c.reply("NO", "", err.(*wire.Error).Text)
		return
	}
	started := time.Now()
	mech := sasl.MechanismName(args[0])
	if !c.s.MechanismSupported(mech) {
		if len(mech) > 32 {
			mech = mech[:32] + "..."
		}
		c.reply("NO", "", "Unsupported authentication mechanism "+wire.SafeText(mech))
		return
	}
	if !c.s.AuthAllowed() {
		c.respond(errPrivacyRequired)
		return
	}
	var initial []byte
	if len(args) == 2 {
		// RFC 5804 has no "=": an empty string is an empty response.
		if initial, err = decodeResponse(args[1]); err != nil {
			c.saslFailed(started, err)
			return
		}
	}
	creds, err := sasl.Decode(mech, initial, c.saslChallenge)
	if err != nil {
		c.saslFailed(started, err)
		return
	}
	c.login(creds, strings.ToLower(mech), started)
}

// decodeResponse decodes one client response string: "*" cancels, "" is
// empty, anything else must be base64.
func decodeResponse(s string) ([]byte, error) {
	if s == "" {
		return []byte{}, nil
	}
	return sasl.DecodeResponse(s)
}

// saslChallenge sends challenge as a string of base64 on a line of its
// own and reads the client's answer, a string.
func (c *conn) saslChallenge(challenge []byte) ([]byte, error) {
	c.write(append(wire.AppendString(nil, base64.StdEncoding.EncodeToString(challenge)), "\r\n"...))
	if err := c.flush(); err != nil {
		return nil, err
	}
	v, err := c.rd.ReadString()
	if err != nil {
		return nil, err
	}
	return decodeResponse(v.Str)
}

// The NO's texts of a cancelled AUTHENTICATE, the proxy's own exchange
// or a relayed one.
const (
	textCancelled = "Authentication cancelled."
	textBadBase64 = "Invalid base64 in SASL response"
)

// saslFailed answers an AUTHENTICATE that ended before a login attempt.
func (c *conn) saslFailed(started time.Time, err error) {
	var we *wire.Error
	var se *sasl.Error
	switch {
	case errors.Is(err, sasl.ErrCancelled):
		c.reply("NO", "", textCancelled)
	case errors.Is(err, sasl.ErrBase64):
		c.reply("NO", "", textBadBase64)
	case errors.As(err, &we):
		c.readFailed(err)
	case errors.As(err, &se):
		c.respond(c.s.Fail(started, gateway.FailSASL, se.Text))
	default: // timeout, EOF, a write error, ...
		c.readFailed(err)
	}
}

// login logs in through the gateway (account rules, route, failover, the
// failure path), speaking ManageSieve to the backends by loginAll; on
// success it relays the backend's OK (with its response code, such as
// SASL data) and hands both connections to the pipe. The client then asks
// the backend itself for the capabilities after login, if it wants them.
func (c *conn) login(creds sasl.Credentials, method string, started time.Time) {
	var bc *backendConn
	b, err := c.s.Login(creds, method, started, func(b *gateway.Backend, lg gateway.Login, rt route.Route) error {
		bc = &backendConn{Backend: b, c: c}
		return bc.loginAll(lg, rt)
	})
	if err != nil {
		c.respond(err)
		return
	}
	ok := &wire.Response{Type: "OK", Code: bc.ok.Code, CodeArgs: bc.ok.CodeArgs, Text: wire.SafeText(bc.ok.Text)}
	if ok.Text == "" {
		ok.Text = "Logged in."
	}
	c.write(ok.Append(nil))
	if err := c.flush(); err != nil {
		b.Close()
		c.s.End("client write: " + err.Error())
		return
	}
	c.s.Handover(b)
}
