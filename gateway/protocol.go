package gateway

import (
	"errors"

	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/route"
)

// Protocol is the seam between the gateway and one mail protocol, as
// nginx's ngx_mail_protocol_t: the gateway accepts, limits, routes, dials,
// fails over and pipes; the protocol speaks its own dialogue before login,
// with the client (Serve) and with the backend (the BackendLogin it hands
// to Session.Login).
type Protocol interface {
	// Name is the protocol's name ("imap", "pop3", "sieve",
	// "submission"): route.Request.Protocol, and the log's prefix.
	Name() string
	// Serve speaks the pre-login dialogue with the client of s: greeting,
	// commands, STARTTLS (Session.StartTLS), login (Session.Login) and, on
	// success, Session.Handover. It returns when the session is to end
	// (Session.End says why) or has been handed over; the gateway then
	// closes or leaves the connection and logs the session.
	Serve(s *Session)
	// Refuse tells a client on a plain connection, before any greeting,
	// that it is not served (e.Code is CodeLimit) in the protocol's form
	// of a goodbye (IMAP: "* BYE text"); the gateway flushes and closes.
	Refuse(s *Session, e *Error)
}

// Farewell is implemented by a protocol that can tell a logged-in client
// why the gateway ends its piped session (its user moved to another
// backend of a pool): IMAP's "* BYE text", ManageSieve's BYE, SMTP's 421.
// The bytes are written after what the backend had sent, then the
// connection is closed. Without it the connection is just closed (POP3
// has no unsolicited answer).
type Farewell interface {
	Farewell(text string) []byte
}

// TextMoved is the farewell of a session whose user was moved.
const TextMoved = "Account moved to another server, please reconnect"

// TextLost is the farewell of a pool session whose assignment this
// gateway can no longer vouch for (the shared store unreachable).
const TextLost = "Server temporarily unavailable, please reconnect"

// TextShutdown is the farewell of a session the gateway closes at the end
// of a drain (Server.DrainSpread).
const TextShutdown = "Server shutting down, please reconnect"

// BackendLogin is a protocol's side of a backend during login. b is
// connected (and past its PROXY header and implicit TLS); BackendLogin
// reads the greeting, runs STARTTLS if b.Route asks for it
// (Backend.StartTLS), passes the client's address when b.Route.ClientAddr
// asks the protocol to, and logs in as lg.Account (rt.Login and
// rt.Password may replace the name and the password towards the backend).
//
// It returns nil once the backend accepted the login (the protocol keeps
// whatever it needs to answer the client, such as the backend's
// capabilities); an *Error when the backend refused it (CodeUnavailable:
// the backend's own trouble, the next backend is tried; any other code:
// the client's credentials, answered through the failure path); any other
// error when the backend failed (the next backend is tried). When the
// client went away during the exchange (a relayed SASL challenge), it ends
// the session (Session.End) and returns an error.
type BackendLogin func(b *Backend, lg Login, rt route.Route) error

// Code is a protocol-neutral kind of answer; each protocol renders it in
// its own form.
type Code int

const (
	// CodeAuthFailed: the credentials were refused (IMAP NO
	// [AUTHENTICATIONFAILED], POP3 -ERR [AUTH], SMTP 535 5.7.8).
	CodeAuthFailed Code = iota + 1
	// CodeUnavailable: no backend could take the login (IMAP NO
	// [UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 454 4.7.0).
	CodeUnavailable
	// CodePrivacyRequired: a login on a plain link where plaintext
	// authentication is off (IMAP NO [PRIVACYREQUIRED], SMTP 538 5.7.11).
	CodePrivacyRequired
	// CodeLimit: too many connections (a goodbye before the greeting).
	CodeLimit
	// CodeInUse: the backend took the credentials but will not open the
	// account now (POP3 [IN-USE], [LOGIN-DELAY]; IMAP [INUSE]): relayed
	// to the client, and not a failed login: no penalty, no delay, not
	// counted towards MaxLoginFailures.
	CodeInUse
	// CodeCancelled: the client cancelled a SASL exchange whose challenges
	// came from the backend (RelayAnswer): rendered as the protocol's own
	// cancel (IMAP BAD, SMTP 501, POP3 -ERR, ManageSieve NO), Detail
	// DetailBase64 when the answer was not base64. A relayed challenge is
	// the backend's refusal (XOAUTH2, OAUTHBEARER), so the login failed:
	// it counts as such (penalty, delay, MaxLoginFailures), and no other
	// backend is tried.
	CodeCancelled
)

// DetailBase64 is the Detail of a CodeCancelled *Error whose answer was
// not base64.
const DetailBase64 = "base64"

// Error is an answer to the client as a value, rendered in one place by
// each protocol (as go-imap's imap.Error): a failed login, an unavailable
// backend, a connection over the limits.
type Error struct {
	Code Code
	// Text is for the client; it may come from a route source or a
	// backend, so the protocol makes it safe for its wire (no CR, LF) and
	// puts its own default in place of an empty one.
	Text string
	// Detail is the response code a route source or the backend named
	// (auth_http's Auth-Error-Code, the [CODE] of an IMAP backend's NO):
	// the protocol shows it instead of Code's own when it is valid there.
	Detail string
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return e.Code.String() + " [" + e.Detail + "]: " + e.Text
	}
	return e.Code.String() + ": " + e.Text
}

func (c Code) String() string {
	switch c {
	case CodeAuthFailed:
		return "authentication failed"
	case CodeUnavailable:
		return "unavailable"
	case CodePrivacyRequired:
		return "privacy required"
	case CodeLimit:
		return "limit"
	case CodeInUse:
		return "in use"
	case CodeCancelled:
		return "cancelled"
	}
	return "unknown"
}

// RelayAnswer checks the client's answer to a backend's SASL challenge
// that a protocol relays: it returns what to send the backend and, when
// the client cancelled ("*", RFC 4422 section 3.5) or sent something that
// is not base64, the CodeCancelled *Error for the BackendLogin to return
// once the backend answered the "*" sent in its place. An empty answer
// is an empty response; "=" stands for one only in a command's initial
// response, and is not base64 here.
func RelayAnswer(answer string) (send string, cancelled *Error) {
	if answer == "*" {
		return "*", &Error{Code: CodeCancelled}
	}
	if _, err := sasl.DecodeBase64([]byte(answer)); err != nil {
		return "*", &Error{Code: CodeCancelled, Detail: DetailBase64}
	}
	return answer, nil
}

// ErrSessionEnded is returned by Session.Login and Session.Fail when the
// session ended meanwhile (Shutdown during the login delay, the client
// went away): the protocol answers nothing more and returns from Serve.
var ErrSessionEnded = errors.New("gateway: session ended")

// Texts the gateway gives when no route source or backend said better.
const (
	TextAuthFailed  = "Authentication failed."
	TextUnavailable = "Server unavailable, try again later"
)
