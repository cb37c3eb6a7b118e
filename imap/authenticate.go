package imap

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/imap/wire"
)

// cmdAuthenticate handles AUTHENTICATE mechanism [initial-response]
// (RFC 9051 section 6.2.2, SASL-IR of RFC 4959). The mechanisms are
// decoded by gateway/sasl, the name decided by gateway.AccountRules, as
// for every protocol.
func (c *conn) cmdAuthenticate(cmd *wire.Command) {
	if len(cmd.Args) < 1 || len(cmd.Args) > 2 || cmd.Args[0].Kind != wire.KindAtom ||
		len(cmd.Args) == 2 && cmd.Args[1].Kind != wire.KindAtom {
		c.tagged(cmd.Tag, "BAD", "", "Usage: AUTHENTICATE mechanism [initial-response]")
		return
	}
	started := time.Now()
	mech := sasl.MechanismName(cmd.Args[0].Str)
	if !c.s.MechanismSupported(mech) {
		name := mech
		if len(name) > 32 {
			name = name[:32] + "..."
		}
		c.tagged(cmd.Tag, "NO", "", "Unsupported authentication mechanism "+name)
		return
	}
	if !c.s.AuthAllowed() {
		c.respond(cmd.Tag, errPrivacyRequired)
		return
	}
	var initial []byte
	var err error
	if len(cmd.Args) == 2 {
		if initial, err = sasl.DecodeResponse(cmd.Args[1].Str); err != nil {
			c.saslFailed(cmd.Tag, started, err)
			return
		}
	}
	creds, err := sasl.Decode(mech, initial, c.saslChallenge)
	if err != nil {
		c.saslFailed(cmd.Tag, started, err)
		return
	}
	c.login(cmd.Tag, creds, strings.ToLower(mech), started)
}

// saslChallenge sends a continuation request with challenge and reads the
// client's answer.
func (c *conn) saslChallenge(challenge []byte) ([]byte, error) {
	c.writef("+ %s\r\n", base64.StdEncoding.EncodeToString(challenge))
	if err := c.flush(); err != nil {
		return nil, err
	}
	b, err := c.rd.ReadLine()
	if err != nil {
		return nil, err
	}
	return sasl.DecodeResponse(string(b))
}

// The tagged BAD's texts of a cancelled AUTHENTICATE, the proxy's own
// exchange or a relayed one.
const (
	textCancelled = "AUTHENTICATE cancelled"
	textBadBase64 = "Invalid base64 in SASL response"
)

// taggedWireError answers a client's protocol error inside a command
// with the command's tagged BAD, and ends the session with BYE when the
// stream cannot be followed.
func (c *conn) taggedWireError(tag string, we *wire.Error) {
	c.tagged(tag, "BAD", we.Code, we.Text)
	if we.Fatal {
		c.bye("Cannot continue after this error", "client protocol error: "+we.Text)
	}
}

// saslFailed answers an AUTHENTICATE that ended before a login attempt.
func (c *conn) saslFailed(tag string, started time.Time, err error) {
	var we *wire.Error
	var se *sasl.Error
	switch {
	case errors.Is(err, sasl.ErrCancelled):
		c.tagged(tag, "BAD", "", textCancelled)
	case errors.Is(err, sasl.ErrBase64):
		c.tagged(tag, "BAD", "", textBadBase64)
	case errors.As(err, &we):
		c.taggedWireError(tag, we)
	case errors.As(err, &se):
		c.respond(tag, c.s.Fail(started, gateway.FailSASL, se.Text))
	default: // timeout, EOF, ...
		c.readFailed(err)
	}
}
