// Package sasl decodes what a mail client sends for the SASL mechanisms a
// mail gateway accepts before login (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER),
// in one place for every protocol. A protocol only carries the exchange:
// it sends the challenges and reads the answers in its own framing (IMAP
// "+ " lines, POP3 "+ " lines, SMTP 334 replies, ManageSieve strings), and
// DecodeResponse turns one base64 answer into bytes.
//
//	creds, err := sasl.Decode("PLAIN", initial, func(challenge []byte) ([]byte, error) {
//		writeContinuation(base64.StdEncoding.EncodeToString(challenge))
//		return sasl.DecodeResponse(readLine())
//	})
//	switch {
//	case errors.Is(err, sasl.ErrCancelled): // the client sent "*"
//	case errors.As(err, new(*sasl.Error)):  // a message we cannot use: a failed login
//	}
//	// creds.Authcid, creds.Password: still to be checked (gateway.AccountRules)
//
// Decode checks only the mechanism's own syntax (RFC 4616 forbids NUL
// inside a PLAIN field, so a fourth field is an error); the rules on which
// names are acceptable live in the gateway, applied to every mechanism
// alike.
package sasl

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/pipegate/pipegate/internal/ascii"
)

// The mechanisms Decode knows.
const (
	Plain       = "PLAIN"
	Login       = "LOGIN"
	XOAuth2     = "XOAUTH2"
	OAuthBearer = "OAUTHBEARER"
)

// ErrCancelled: the client answered a challenge with "*" (RFC 4422 section
// 3.5, in the framing of RFC 9051, 5034 and 4954).
var ErrCancelled = errors.New("sasl: authentication cancelled by the client")

// ErrBase64 is an answer that is not base64.
var ErrBase64 = errors.New("sasl: invalid base64 in SASL response")

// ErrUnsupported is a mechanism Decode does not know.
var ErrUnsupported = errors.New("sasl: unsupported mechanism")

// Error is a well-formed exchange whose message the gateway cannot use
// (a PLAIN message with four fields, an XOAUTH2 message without a user);
// it counts as a failed login. Text is safe to show the client.
type Error struct {
	Mechanism string
	Text      string
}

func (e *Error) Error() string { return "sasl: " + e.Mechanism + ": " + e.Text }

// Credentials are what the client sent, decoded but not yet checked.
type Credentials struct {
	Mechanism string // one of the constants above
	Authzid   string // PLAIN's authorization identity; "" when none was given
	Authcid   string // the name that authenticates (XOAUTH2 user=, OAUTHBEARER a=)
	Password  string // PLAIN and LOGIN

	// For XOAUTH2 and OAUTHBEARER: the message's other fields, kept so
	// that Message can rebuild it for the backend around the name the
	// gateway decided on.
	GS2Flag string   // OAUTHBEARER's channel-binding flag, "n" or "y"
	Fields  []string // "auth=Bearer ...", "host=...", ... in the client's order
}

// Respond sends challenge to the client (the caller encodes it in its
// protocol's framing, base64 included) and returns the client's decoded
// answer, or ErrCancelled, ErrBase64 or the caller's I/O error.
type Respond func(challenge []byte) ([]byte, error)

// MechanismName is the mechanism name a client sent, in upper case by
// ASCII rules only: names are ASCII (RFC 4422 section 3.1) and compared
// without regard to case, but Unicode case mapping would read "plaın"
// (a dotless ı) or "ſcram" (a long s) as an ASCII name. Other bytes stay
// as they are, so such a name is unknown to Supported.
func MechanismName(s string) string { return ascii.Upper(s) }

// Supported reports whether Decode knows mech (in upper case); the OAuth
// mechanisms only when oauth is set.
func Supported(mech string, oauth bool) bool {
	switch mech {
	case Plain, Login:
		return true
	case XOAuth2, OAuthBearer:
		return oauth
	}
	return false
}

// Decode runs the server side of mechanism mech (in upper case). initial
// is the client's initial response, nil when it sent none (an empty
// initial response is a non-nil empty slice).
func Decode(mech string, initial []byte, respond Respond) (Credentials, error) {
	first := func(challenge string) ([]byte, error) {
		if initial != nil {
			return initial, nil
		}
		return respond([]byte(challenge))
	}
	switch mech {
	case Plain:
		b, err := first("")
		if err != nil {
			return Credentials{}, err
		}
		return decodePlain(b)
	case Login:
		user, err := first("Username:")
		if err != nil {
			return Credentials{}, err
		}
		pass, err := respond([]byte("Password:"))
		if err != nil {
			return Credentials{}, err
		}
		if len(user) == 0 {
			return Credentials{}, &Error{Login, "Empty user name"}
		}
		return Credentials{Mechanism: Login, Authcid: string(user), Password: string(pass)}, nil
	case XOAuth2:
		b, err := first("")
		if err != nil {
			return Credentials{}, err
		}
		return decodeXOAuth2(b)
	case OAuthBearer:
		b, err := first("")
		if err != nil {
			return Credentials{}, err
		}
		return decodeOAuthBearer(b)
	}
	return Credentials{}, ErrUnsupported
}

// DecodeResponse decodes one client answer: "*" cancels, "=" is an empty
// response (RFC 4959, 5034, 4954), anything else must be base64.
func DecodeResponse(line string) ([]byte, error) {
	switch line {
	case "*":
		return nil, ErrCancelled
	case "=":
		return []byte{}, nil
	}
	return DecodeBase64([]byte(line))
}

// DecodeBase64 decodes standard padded base64 (RFC 4648 section 4) and
// nothing else, as every protocol's SASL exchange wants: encoding/base64
// alone would skip CR and LF inside the data. Anything else is ErrBase64.
func DecodeBase64(b []byte) ([]byte, error) {
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, ErrBase64
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Strict().Decode(out, b)
	if err != nil {
		return nil, ErrBase64
	}
	return out[:n], nil
}

// decodePlain: [authzid] NUL authcid NUL passwd (RFC 4616). No field may
// hold a NUL, so exactly three fields.
func decodePlain(b []byte) (Credentials, error) {
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 {
		return Credentials{}, &Error{Plain, "Invalid PLAIN message"}
	}
	if parts[1] == "" {
		return Credentials{}, &Error{Plain, "Empty user name"}
	}
	c := Credentials{Mechanism: Plain, Authzid: parts[0], Authcid: parts[1], Password: parts[2]}
	if c.Authzid == c.Authcid {
		c.Authzid = ""
	}
	return c, nil
}

// decodeXOAuth2: "user=NAME" ^A "auth=Bearer TOKEN" ^A ^A (Google's
// XOAUTH2). The user field must come once.
func decodeXOAuth2(b []byte) (Credentials, error) {
	c := Credentials{Mechanism: XOAuth2}
	msg, ok := strings.CutSuffix(string(b), "\x01\x01")
	if !ok {
		return Credentials{}, &Error{XOAuth2, "Invalid XOAUTH2 message"}
	}
	users := 0
	for _, f := range strings.Split(msg, "\x01") {
		if v, ok := strings.CutPrefix(f, "user="); ok {
			c.Authcid = v
			users++
			continue
		}
		c.Fields = append(c.Fields, f)
	}
	if users != 1 || c.Authcid == "" {
		return Credentials{}, &Error{XOAuth2, "No user in XOAUTH2 message"}
	}
	return c, nil
}

// decodeOAuthBearer: gs2-header ^A kvpairs ^A ^A (RFC 7628 section 3.1),
// with gs2-header "n,a=NAME," or "y,a=NAME,"; in NAME "=2C" and "=3D"
// stand for "," and "=" (RFC 5801), and any other "=" is an error.
func decodeOAuthBearer(b []byte) (Credentials, error) {
	bad := &Error{OAuthBearer, "Invalid OAUTHBEARER message"}
	header, rest, ok := strings.Cut(string(b), "\x01")
	if !ok {
		return Credentials{}, bad
	}
	var kvs string
	if rest != "\x01" { // not an empty list of pairs
		if kvs, ok = strings.CutSuffix(rest, "\x01\x01"); !ok {
			return Credentials{}, bad
		}
	}
	h := strings.Split(header, ",")
	if len(h) != 3 || h[2] != "" || h[0] != "n" && h[0] != "y" {
		return Credentials{}, bad
	}
	v, ok := strings.CutPrefix(h[1], "a=")
	if !ok || v == "" {
		return Credentials{}, &Error{OAuthBearer, "No user in OAUTHBEARER message"}
	}
	name, ok := unescapeSASLName(v)
	if !ok {
		return Credentials{}, bad
	}
	c := Credentials{Mechanism: OAuthBearer, Authcid: name, GS2Flag: h[0]}
	if kvs != "" {
		c.Fields = strings.Split(kvs, "\x01")
	}
	return c, nil
}

// unescapeSASLName undoes RFC 5801's saslname escaping.
func unescapeSASLName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1 : min(i+3, len(s))] {
		case "2C":
			b.WriteByte(',')
		case "3D":
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// Message rebuilds an XOAUTH2 or OAUTHBEARER initial response with name as
// the user, for the backend: the backend then sees the very name that was
// routed and checked. For other mechanisms it returns nil.
func (c Credentials) Message(name string) []byte {
	switch c.Mechanism {
	case XOAuth2:
		var b strings.Builder
		b.WriteString("user=" + name + "\x01")
		for _, f := range c.Fields {
			b.WriteString(f + "\x01")
		}
		b.WriteString("\x01")
		return []byte(b.String())
	case OAuthBearer:
		esc := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(name)
		var b strings.Builder
		b.WriteString(c.GS2Flag + ",a=" + esc + ",\x01")
		for _, f := range c.Fields {
			b.WriteString(f + "\x01")
		}
		b.WriteString("\x01")
		return []byte(b.String())
	}
	return nil
}
