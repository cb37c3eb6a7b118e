package imap

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"pipegate/imap/wire"
)

// errSASLCancelled: the client answered a challenge with "*".
var errSASLCancelled = errors.New("AUTHENTICATE cancelled")

// errSASLBase64: a response that is not base64.
var errSASLBase64 = errors.New("invalid base64 in SASL response")

// cmdAuthenticate handles AUTHENTICATE mechanism [initial-response]
// (RFC 9051 section 6.2.2, SASL-IR of RFC 4959).
func (ss *session) cmdAuthenticate(cmd *wire.Command) {
	if len(cmd.Args) < 1 || len(cmd.Args) > 2 || cmd.Args[0].Kind != wire.KindAtom ||
		len(cmd.Args) == 2 && cmd.Args[1].Kind != wire.KindAtom {
		ss.tagged(cmd.Tag, "BAD", "", "Usage: AUTHENTICATE mechanism [initial-response]")
		return
	}
	started := time.Now()
	mech := strings.ToUpper(cmd.Args[0].Str)
	var ir *string
	if len(cmd.Args) == 2 {
		ir = &cmd.Args[1].Str
	}
	switch mech {
	case "PLAIN", "LOGIN":
	case "XOAUTH2", "OAUTHBEARER":
		if !ss.srv.OAuth {
			ss.tagged(cmd.Tag, "NO", "", "Unsupported authentication mechanism "+mech)
			return
		}
	default:
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
	var cred credentials
	var err error
	switch mech {
	case "PLAIN":
		cred, err = ss.saslPlain(ir)
	case "LOGIN":
		cred, err = ss.saslLogin(ir)
	default:
		cred, err = ss.saslOAuth(mech, ir)
	}
	switch {
	case err == nil:
		ss.login(cmd.Tag, cred)
	case errors.Is(err, errSASLCancelled):
		ss.tagged(cmd.Tag, "BAD", "", "AUTHENTICATE cancelled")
	case errors.Is(err, errSASLBase64):
		ss.tagged(cmd.Tag, "BAD", "", "Invalid base64 in SASL response")
	default:
		var we *wire.Error
		var be *badSASL
		switch {
		case errors.As(err, &we):
			ss.tagged(cmd.Tag, "BAD", we.Code, we.Text)
			if we.Fatal {
				ss.bye("Cannot continue after this error", "client protocol error: "+we.Text)
			}
		case errors.As(err, &be):
			ss.loginFailed(cmd.Tag, "", started, "", be.text)
		default: // timeout, EOF, ...
			ss.readFailed(err)
		}
	}
}

// badSASL is a well-formed exchange carrying a message we cannot use; it
// counts as a failed login.
type badSASL struct{ text string }

func (e *badSASL) Error() string { return e.text }

// saslResponse returns the initial response if the client sent one, else
// sends a continuation request with challenge and reads the answer.
func (ss *session) saslResponse(ir *string, challenge string) ([]byte, error) {
	var line string
	if ir != nil {
		line = *ir
	} else {
		if challenge == "" {
			ss.writef("+ \r\n")
		} else {
			ss.writef("+ %s\r\n", challenge)
		}
		if err := ss.flush(); err != nil {
			return nil, err
		}
		b, err := ss.rd.ReadLine()
		if err != nil {
			return nil, err
		}
		line = string(b)
	}
	if line == "*" {
		return nil, errSASLCancelled
	}
	if line == "=" {
		return []byte{}, nil
	}
	out, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return nil, errSASLBase64
	}
	return out, nil
}

// saslPlain: authzid NUL authcid NUL passwd (RFC 4616).
func (ss *session) saslPlain(ir *string) (credentials, error) {
	b, err := ss.saslResponse(ir, "")
	if err != nil {
		return credentials{}, err
	}
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return credentials{}, &badSASL{"Invalid PLAIN message"}
	}
	cred := credentials{method: "plain", authz: string(parts[0]), user: string(parts[1]), pass: string(parts[2])}
	if cred.authz == cred.user {
		cred.authz = ""
	}
	return cred, nil
}

// saslLogin: the obsolete LOGIN mechanism: user name, then password, each
// after a challenge (or the user name as initial response).
func (ss *session) saslLogin(ir *string) (credentials, error) {
	user, err := ss.saslResponse(ir, base64.StdEncoding.EncodeToString([]byte("Username:")))
	if err != nil {
		return credentials{}, err
	}
	pass, err := ss.saslResponse(nil, base64.StdEncoding.EncodeToString([]byte("Password:")))
	if err != nil {
		return credentials{}, err
	}
	if len(user) == 0 {
		return credentials{}, &badSASL{"Empty user name"}
	}
	return credentials{method: "login", user: string(user), pass: string(pass)}, nil
}

// saslOAuth reads an XOAUTH2 or OAUTHBEARER initial response, only to find
// the user to route by; the backend checks the token.
func (ss *session) saslOAuth(mech string, ir *string) (credentials, error) {
	b, err := ss.saslResponse(ir, "")
	if err != nil {
		return credentials{}, err
	}
	var user string
	if mech == "XOAUTH2" {
		user = xoauth2User(b)
	} else {
		user = oauthBearerUser(b)
	}
	if user == "" {
		return credentials{}, &badSASL{"No user in " + mech + " message"}
	}
	return credentials{
		method: strings.ToLower(mech), mech: mech, user: user,
		saslIR: base64.StdEncoding.EncodeToString(b),
	}, nil
}

// xoauth2User finds user=NAME in "user=NAME\x01auth=Bearer TOKEN\x01\x01".
func xoauth2User(b []byte) string {
	for _, f := range bytes.Split(b, []byte{1}) {
		if v, ok := bytes.CutPrefix(f, []byte("user=")); ok {
			return string(v)
		}
	}
	return ""
}

// oauthBearerUser finds the authzid of the GS2 header of an OAUTHBEARER
// message (RFC 7628): "n,a=user@example.com,\x01host=...\x01auth=Bearer ...\x01\x01".
// "=2C" and "=3D" in the name stand for "," and "=".
func oauthBearerUser(b []byte) string {
	header, _, _ := bytes.Cut(b, []byte{1})
	fields := bytes.Split(header, []byte(","))
	if len(fields) < 2 {
		return ""
	}
	v, ok := bytes.CutPrefix(fields[1], []byte("a="))
	if !ok {
		return ""
	}
	s := strings.NewReplacer("=2C", ",", "=3D", "=").Replace(string(v))
	return s
}
