package pop3

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/pop3/wire"
)

// cmdAuth handles AUTH mechanism [initial-response] (RFC 5034). The
// mechanisms are decoded by gateway/sasl, the name decided by
// gateway.AccountRules, as for every protocol. AUTH alone lists the
// mechanisms, as Dovecot and the Outlook-era clients that ask do.
func (c *conn) cmdAuth(cmd *wire.Command) {
	if len(cmd.Args) == 0 {
		c.respond(&wire.Response{Status: wire.StatusOK, Text: "Supported mechanisms follow", Lines: append([]string{}, c.s.Mechanisms()...)})
		return
	}
	if len(cmd.Args) > 2 {
		c.err("", "Usage: AUTH mechanism [initial-response]")
		return
	}
	started := time.Now()
	mech := sasl.MechanismName(cmd.Args[0])
	if !c.s.MechanismSupported(mech) {
		c.err("", "Unsupported authentication mechanism")
		return
	}
	if !c.s.AuthAllowed() {
		c.fail(errPrivacyRequired)
		return
	}
	var initial []byte
	if len(cmd.Args) == 2 {
		var err error
		if initial, err = wire.DecodeInitialResponse(cmd.Args[1]); err != nil {
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

// saslChallenge sends "+ base64(challenge)" and reads the client's answer.
func (c *conn) saslChallenge(challenge []byte) ([]byte, error) {
	c.respond(&wire.Response{Status: wire.StatusContinue, Text: base64.StdEncoding.EncodeToString(challenge)})
	if err := c.flush(); err != nil {
		return nil, err
	}
	line, err := c.rd.ReadSASLResponse()
	if err != nil {
		return nil, err
	}
	data, cancel, err := wire.DecodeResponse(line)
	if cancel {
		return nil, sasl.ErrCancelled
	}
	return data, err
}

// textCancelled answers a cancelled AUTH, the proxy's own exchange or
// a relayed one.
const textCancelled = "Authentication cancelled"

// saslFailed answers an AUTH that ended before a login attempt.
func (c *conn) saslFailed(started time.Time, err error) {
	var we *wire.Error
	var se *sasl.Error
	switch {
	case errors.Is(err, sasl.ErrCancelled):
		c.err("", textCancelled)
	case errors.As(err, &we):
		c.write(we.Reply())
		if we.Fatal {
			c.flush()
			c.s.End("client protocol error: " + we.Text)
		}
	case errors.As(err, &se):
		c.fail(c.s.Fail(started, gateway.FailSASL, se.Text))
	default: // timeout, EOF, a write error
		if c.werr == nil {
			c.readFailed(err)
		}
	}
}
