package submission

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission/wire"
)

// cmdAuth handles AUTH mechanism [initial-response] (RFC 4954). The
// mechanisms are decoded by gateway/sasl, the name decided by
// gateway.AccountRules, as for every protocol.
func (c *conn) cmdAuth(cmd *wire.Command) {
	started := time.Now()
	args := cmd.Args()
	switch {
	case len(args) < 1 || len(args) > 2:
		c.reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
		return
	case c.helo == "":
		c.reply(503, "5.5.1", "Send EHLO first")
		return
	}
	mech := sasl.MechanismName(args[0])
	if !c.s.MechanismSupported(mech) {
		c.reply(504, "5.5.4", "Unrecognized authentication type")
		return
	}
	if !c.s.AuthAllowed() {
		c.respond(errPrivacyRequired)
		return
	}
	var initial []byte
	if len(args) == 2 {
		var err error
		if initial, err = wire.DecodeInitialResponse(args[1]); err != nil {
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

// saslChallenge sends "334 challenge" and reads the client's answer.
func (c *conn) saslChallenge(challenge []byte) ([]byte, error) {
	c.reply(334, "", base64.StdEncoding.EncodeToString(challenge))
	if err := c.flush(); err != nil {
		return nil, err
	}
	line, err := c.rd.ReadAuthLine()
	if err != nil {
		return nil, err
	}
	data, cancel, err := wire.DecodeResponse(line)
	if cancel {
		return nil, sasl.ErrCancelled
	}
	return data, err
}

// textCancelled answers a cancelled AUTH (501 5.0.0), the proxy's own
// exchange or a relayed one.
const textCancelled = "Authentication cancelled"

// saslFailed answers an AUTH that ended before a login attempt.
func (c *conn) saslFailed(started time.Time, err error) {
	var we *wire.Error
	var se *sasl.Error
	switch {
	case errors.Is(err, sasl.ErrCancelled):
		c.reply(501, "5.0.0", textCancelled)
	case errors.As(err, &we): // bad base64, a line too long (fatal)
		c.readFailed(err)
	case errors.As(err, &se):
		c.respond(c.s.Fail(started, gateway.FailSASL, se.Text))
	default: // timeout, EOF, a write error
		if c.werr != nil {
			c.s.End("client write: " + c.werr.Error())
			return
		}
		c.readFailed(err)
	}
}

// login logs in through the gateway (account rules, route, failover, the
// failure path), speaking SMTP to the backends by backendConn.loginAll; on
// success it answers the client 235 with the backend's text and hands
// both connections to the pipe. From then on the backend answers
// everything, a later EHLO included: the capabilities after AUTH are the
// backend's.
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
	enhanced, text := "2.7.0", "Authentication successful"
	if bc.ok.Enhanced != "" {
		enhanced = bc.ok.Enhanced
	}
	if t := wire.SafeText(bc.ok.Text()); t != "" {
		text = t
	}
	c.reply(235, enhanced, text)
	if err := c.flush(); err != nil {
		b.Close()
		c.s.End("client write: " + err.Error())
		return
	}
	c.s.Handover(b)
}
