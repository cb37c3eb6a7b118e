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
func (ss *session) cmdAuthenticate(cmd *wire.Command) {
	if len(cmd.Args) < 1 || len(cmd.Args) > 2 || cmd.Args[0].Kind != wire.KindAtom ||
		len(cmd.Args) == 2 && cmd.Args[1].Kind != wire.KindAtom {
		ss.tagged(cmd.Tag, "BAD", "", "Usage: AUTHENTICATE mechanism [initial-response]")
		return
	}
	started := time.Now()
	mech := strings.ToUpper(cmd.Args[0].Str)
	if !sasl.Supported(mech, ss.srv.OAuth) {
		name := mech
		if len(name) > 32 {
			name = name[:32] + "..."
		}
		ss.tagged(cmd.Tag, "NO", "", "Unsupported authentication mechanism "+name)
		return
	}
	if !ss.authAllowed() {
		ss.tagged(cmd.Tag, "NO", "PRIVACYREQUIRED", "Plaintext authentication is disabled, use STARTTLS first")
		return
	}
	var initial []byte
	var err error
	if len(cmd.Args) == 2 {
		if initial, err = sasl.DecodeResponse(cmd.Args[1].Str); err != nil {
			ss.saslFailed(cmd.Tag, started, err)
			return
		}
	}
	creds, err := sasl.Decode(mech, initial, ss.saslChallenge)
	if err != nil {
		ss.saslFailed(cmd.Tag, started, err)
		return
	}
	ss.login(cmd.Tag, creds, strings.ToLower(mech), started)
}

// saslChallenge sends a continuation request with challenge and reads the
// client's answer.
func (ss *session) saslChallenge(challenge []byte) ([]byte, error) {
	ss.writef("+ %s\r\n", base64.StdEncoding.EncodeToString(challenge))
	if err := ss.flush(); err != nil {
		return nil, err
	}
	b, err := ss.rd.ReadLine()
	if err != nil {
		return nil, err
	}
	return sasl.DecodeResponse(string(b))
}

// saslFailed answers an AUTHENTICATE that ended before a login attempt.
func (ss *session) saslFailed(tag string, started time.Time, err error) {
	var we *wire.Error
	var se *sasl.Error
	switch {
	case errors.Is(err, sasl.ErrCancelled):
		ss.tagged(tag, "BAD", "", "AUTHENTICATE cancelled")
	case errors.Is(err, sasl.ErrBase64):
		ss.tagged(tag, "BAD", "", "Invalid base64 in SASL response")
	case errors.As(err, &we):
		ss.tagged(tag, "BAD", we.Code, we.Text)
		if we.Fatal {
			ss.bye("Cannot continue after this error", "client protocol error: "+we.Text)
		}
	case errors.As(err, &se):
		ss.loginFailed(tag, "", started, gateway.FailSASL, 0, "AUTHENTICATIONFAILED", se.Text)
	default: // timeout, EOF, ...
		ss.readFailed(err)
	}
}
