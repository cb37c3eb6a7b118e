package gateway

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/internal/ascii"
)

// DefaultUsernameChars are the bytes a user name may hold by default:
// Dovecot's auth_username_chars.
const DefaultUsernameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@"

// MaxNameLength bounds a user name, in bytes: a mail address has at most
// 254 (RFC 5321 section 4.5.3.1.3).
const MaxNameLength = 256

// Username formats, applied before routing (Dovecot's auth_username_format
// %u and %Lu).
const (
	FormatAsIs      = "as_is"
	FormatLowercase = "lowercase"
)

// AccountRules decide which names are acceptable and how they are written.
// The zero value is the safe default: Dovecot's characters, names as sent,
// no master users.
type AccountRules struct {
	// Chars are the bytes a name may hold; "" means DefaultUsernameChars.
	Chars string
	// AnyPrintable allows any printable UTF-8 instead of Chars (the config's
	// `username_chars: ""`).
	AnyPrintable bool
	// Format is FormatAsIs ("") or FormatLowercase. Choose
	// FormatLowercase (the daemon's default, username_format) for
	// backends that lower-case names themselves, as Dovecot (%Lu) and
	// Cyrus do: the account routed, limited and logged is then the one
	// they log in.
	Format string
	// AllowMasterUsers lets an authorization identity differ from the
	// authenticating name (PLAIN's authzid): the route is then the
	// authzid's. Off: such a login is refused.
	AllowMasterUsers bool
	// DefaultDomain, when set, is appended as "@DefaultDomain" to a name
	// without '@' (Dovecot's auth_default_realm, Perdition's
	// --add_domain), before Format: "alice" is routed, limited, logged and
	// logged in at the backend as "alice@DefaultDomain".
	DefaultDomain string
}

// Login is a decided identity.
type Login struct {
	// Account is the account the session is for: routed, checked, limited,
	// logged and logged in at the backend. It is the authorization identity
	// of a master-user login, else the authenticating name.
	Account string
	// Authcid is the authenticating name (the master user when Account is
	// someone else's); equal to Account otherwise.
	Authcid  string
	Password string // never log it
	// Mechanism is the SASL mechanism, or "" for a protocol's own password
	// command (IMAP LOGIN, POP3 USER/PASS).
	Mechanism string
	// Creds are the decoded credentials, for the mechanisms that are passed
	// on to the backend (XOAUTH2, OAUTHBEARER: Creds.Message(Account)).
	Creds sasl.Credentials
}

// Master reports whether this is a master-user login (an authorization
// identity other than the authenticating name).
func (l Login) Master() bool { return l.Account != l.Authcid }

// Refused is a login refused for its name or password before any route
// lookup. Text is safe to show the client; the protocol renders it as its
// authentication failure (IMAP: NO [AUTHENTICATIONFAILED]).
type Refused struct {
	Text   string
	Reason string // for the log: which rule
}

func (e *Refused) Error() string { return "login refused: " + e.Reason }

// Decide checks credentials and returns the one identity the session uses.
func (r AccountRules) Decide(c sasl.Credentials) (Login, error) {
	if err := checkSecret(c.Password); err != nil {
		return Login{}, err
	}
	authcid, err := r.name(c.Authcid, "user name")
	if err != nil {
		return Login{}, err
	}
	l := Login{Account: authcid, Authcid: authcid, Password: c.Password, Mechanism: c.Mechanism, Creds: c}
	if c.Authzid != "" {
		authzid, err := r.name(c.Authzid, "authorization identity")
		if err != nil {
			return Login{}, err
		}
		if authzid != authcid {
			if !r.AllowMasterUsers {
				return Login{}, &Refused{Text: "Authorization identity differs from the user name", Reason: "authzid differs from authcid (no master users)"}
			}
			l.Account = authzid
		}
	}
	for _, f := range c.Fields {
		if err := checkSecret(f); err != nil {
			return Login{}, err
		}
	}
	return l, nil
}

// name checks and formats one name.
func (r AccountRules) name(s, what string) (string, error) {
	switch {
	case s == "":
		return "", &Refused{Text: "Empty " + what, Reason: "empty " + what}
	case len(s) > MaxNameLength:
		return "", &Refused{Text: "The " + what + " is too long", Reason: what + " longer than the limit"}
	case strings.ContainsAny(s, "\x00\r\n"):
		return "", &Refused{Text: "Invalid characters in the " + what, Reason: what + " holds NUL, CR or LF"}
	}
	if r.AnyPrintable {
		if !utf8.ValidString(s) || strings.IndexFunc(s, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0 {
			return "", &Refused{Text: "Invalid characters in the " + what, Reason: what + " is not printable UTF-8"}
		}
	} else {
		chars := r.Chars
		if chars == "" {
			chars = DefaultUsernameChars
		}
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(chars, s[i]) < 0 {
				return "", &Refused{Text: "Invalid characters in the " + what, Reason: what + " holds a byte outside username_chars"}
			}
		}
	}
	if r.DefaultDomain != "" && strings.IndexByte(s, '@') < 0 {
		if s += "@" + r.DefaultDomain; len(s) > MaxNameLength {
			return "", &Refused{Text: "The " + what + " is too long", Reason: what + " with the default domain longer than the limit"}
		}
	}
	if r.Format == FormatLowercase {
		s = ascii.Lower(s) // as Dovecot's %Lu: ASCII letters only
	}
	return s, nil
}

// checkSecret refuses a password (or an OAuth message field) that holds
// NUL, CR or LF: no protocol can carry one to a backend as one argument.
func checkSecret(s string) error {
	if strings.ContainsAny(s, "\x00\r\n") {
		return &Refused{Text: "Invalid characters in the password", Reason: "password holds NUL, CR or LF"}
	}
	return nil
}

// ValidFormat reports whether f is a known username format.
func ValidFormat(f string) bool { return f == "" || f == FormatAsIs || f == FormatLowercase }

// CheckDefaultDomain says what is wrong with DefaultDomain, if anything:
// it must be a domain a name may hold under the rules (Chars or
// AnyPrintable), without '@'.
func (r AccountRules) CheckDefaultDomain() error {
	d := r.DefaultDomain
	switch {
	case d == "":
		return nil
	case strings.IndexByte(d, '@') >= 0:
		return fmt.Errorf("%q: a domain, without '@'", d)
	case len(d) > 253:
		return fmt.Errorf("%q: longer than a domain may be (253 bytes)", d)
	}
	// With its '@': the name the rules then check is NAME@DOMAIN.
	if _, err := (AccountRules{Chars: r.Chars, AnyPrintable: r.AnyPrintable}).name("@"+d, "domain"); err != nil {
		return fmt.Errorf("%q: '@' or a byte of it that names may not hold (username_chars)", d)
	}
	return nil
}
