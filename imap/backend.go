package imap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/route"
)

// maxBackendResponse bounds one response read from a backend before login.
const maxBackendResponse = 64 << 10

// maxBackendResponses bounds the responses read while waiting for one
// answer (untagged data, other tags): a backend that sends them for ever
// is refused at once, not read until the BackendTimeout.
const maxBackendResponses = 100

// errTooManyResponses: more than maxBackendResponses before the answer.
var errTooManyResponses = fmt.Errorf("more than %d responses before the answer", maxBackendResponses)

// backendConn is IMAP's side of a backend during login.
type backendConn struct {
	*gateway.Backend
	c         *conn  // the client's session
	clientTag string // of the client's login command
	caps      []string
	seq       int
	// pendingID is the tag of an ID written but not yet answered (maybe
	// not yet flushed), so that login can pipeline behind it.
	pendingID string
	// behindID is the tag of the command sent behind the pending ID,
	// whose answer may come first (RFC 9051 section 5.5 lets a server
	// complete commands out of order); early is that answer, read while
	// waiting for the ID's. readTagged gives it to whoever asks for its
	// tag.
	behindID string
	early    *wire.Response
	ok       *wire.Response // the backend's OK to the login
	// afterOK is what the backend sent after its OK to the login and
	// before its answer to the proxy's CAPABILITY (an ALERT, say): the
	// client's, to follow the client's OK.
	afterOK []byte
}

// loginAll brings the backend to the point where it takes a login
// (greeting, STARTTLS, capabilities, an ID written but not yet answered:
// see finishID), logs in, and learns the post-login capabilities. It
// returns nil when logged in, a *gateway.Error when the backend refused
// the login, another error when the backend failed.
func (bc *backendConn) loginAll(lg gateway.Login, rt route.Route) error {
	if err := bc.prepare(); err != nil {
		return err
	}
	resp, err := bc.login(lg, rt)
	if err != nil {
		return err
	}
	switch resp.Type {
	case "OK":
	case "NO":
		e := &gateway.Error{Code: gateway.CodeAuthFailed, Text: resp.Text, Detail: resp.Code}
		if resp.CodeArgs != "" {
			e.Detail += " " + resp.CodeArgs
		}
		switch resp.Code {
		case "UNAVAILABLE":
			e.Code = gateway.CodeUnavailable
		case "INUSE": // RFC 5530: right credentials, the account is busy
			e.Code = gateway.CodeInUse
		}
		return e
	default:
		// BAD (the backend refused the command itself, not the
		// credentials: RFC 9051 section 6.2.3 answers those with NO) or
		// no response type at all: the backend is broken or speaks
		// another dialect, not the user's failure.
		return fmt.Errorf("login answered %.80q: neither OK nor NO", strings.TrimSpace(resp.Type+" "+resp.Text))
	}
	bc.ok = resp
	if bc.caps = resp.Caps(); bc.caps == nil {
		if bc.caps, err = bc.readCapability(bc.writeCommand("CAPABILITY"), &bc.afterOK); err != nil {
			return fmt.Errorf("CAPABILITY after login: %w", err)
		}
	}
	return nil
}

func (bc *backendConn) prepare() error {
	if err := bc.greet(); err != nil {
		return err
	}
	var err error
	if bc.caps == nil {
		// Nothing can be pipelined behind: ID may be unknown to the
		// backend (go-imap's server says BYE to unknown commands), and
		// the login command depends on the capabilities.
		if bc.caps, err = bc.capability(); err != nil {
			return err
		}
	}
	if bc.Route.ClientAddr == route.ClientAddrID {
		if !wire.HasCap(bc.caps, "ID") {
			bc.c.s.Logger().Debug("imap: backend lacks ID, client address not sent", "backend", bc.Route.Addr)
		} else if err := bc.writeID(); err != nil {
			return err
		}
	}
	// The ID stays in the buffer (or unanswered): login sends its command
	// in the same write when that is safe, see finishID.
	return nil
}

// greet reads the backend's greeting and its capabilities, and runs
// STARTTLS when the route asks for it (the capabilities are then to be
// asked again: nil).
func (bc *backendConn) greet() error {
	greet, err := bc.read()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if greet.Tag != "*" || greet.Type != "OK" {
		return fmt.Errorf("greeting is not OK: %q", wire.SafeText(string(greet.Raw)))
	}
	bc.caps = greet.Caps()
	if bc.Route.TLS == route.TLSStartTLS {
		return bc.startTLS()
	}
	return nil
}

// startTLS runs STARTTLS. Bytes the backend sent after its OK would be
// plaintext injected before TLS: refused.
func (bc *backendConn) startTLS() error {
	tag := bc.nextTag()
	if err := bc.send(tag + " STARTTLS\r\n"); err != nil {
		return err
	}
	resp, err := bc.readTagged(tag)
	if err != nil {
		return fmt.Errorf("STARTTLS: %w", err)
	}
	if resp.Type != "OK" {
		return fmt.Errorf("STARTTLS refused: %s %s", resp.Type, wire.SafeText(resp.Text))
	}
	if err := bc.StartTLS(); err != nil {
		return err
	}
	bc.caps = nil // to be asked again over TLS (RFC 9051 section 6.2.1)
	return nil
}

// writeID writes, without flushing, an ID that tells the backend who the
// client is (Dovecot trusts this from login_trusted_networks), how many
// more proxy hops are allowed (x-proxy-ttl), then the client's own ID
// fields. Its answer is read by finishID. A synchronizing literal (a
// client's ID value that cannot be quoted) is waited for here, before
// anything else is pipelined behind it.
func (bc *backendConn) writeID() error {
	tag := bc.nextTag()
	w := bc.writer()
	s := bc.c.s
	w.Atom(tag).SP().Atom("ID").SP().Atom("(").String("x-session-id").SP().String(s.ID())
	pairs := 2 // x-session-id, x-proxy-ttl
	if client := s.Client(); client.IsValid() {
		w.SP().String("x-originating-ip").SP().String(client.Addr().String())
		pairs++
		if client.Port() != 0 { // none when a proxy in front said no port
			w.SP().String("x-originating-port").SP().String(strconv.Itoa(int(client.Port())))
			pairs++
		}
	}
	if local := s.Local(); local.IsValid() {
		w.SP().String("x-connected-ip").SP().String(local.Addr().String())
		w.SP().String("x-connected-port").SP().String(strconv.Itoa(int(local.Port())))
		pairs += 2
	}
	w.SP().String("x-proxy-ttl").SP().String(strconv.Itoa(s.ProxyTTL() - 1))
	// At most 30 pairs in all (RFC 2971 section 3.3): the client's first
	// ones fill what the proxy's own leave.
	fields := bc.c.clientID
	fields = fields[:min(len(fields), maxIDFields-pairs)]
	for _, f := range fields {
		w.SP().String(f.key).SP().NString(f.value)
	}
	w.Atom(")").CRLF()
	if err := w.Err(); err != nil {
		return fmt.Errorf("ID: %w", err)
	}
	bc.pendingID = tag
	return nil
}

// finishID flushes whatever is buffered (the ID, and a login command
// pipelined behind it) and reads the ID's answer, if an ID is pending. A
// backend that refuses ID is still logged in to.
func (bc *backendConn) finishID() error {
	tag := bc.pendingID
	if tag == "" {
		return nil
	}
	bc.pendingID = ""
	if err := bc.Writer().Flush(); err != nil {
		return fmt.Errorf("ID: %w", err)
	}
	behind := bc.behindID
	bc.behindID = ""
	resp, err := bc.readTaggedKeeping(tag, behind)
	if err != nil {
		return fmt.Errorf("ID: %w", err)
	}
	if resp.Tag == "+" {
		return errors.New("ID: unexpected continuation request")
	}
	if resp.Type != "OK" {
		bc.c.s.Logger().Debug("imap: backend refused ID", "backend", bc.Route.Addr, "answer", resp.Type+" "+wire.SafeText(resp.Text))
	}
	return nil
}

// capability asks the backend for its capabilities. Any pending ID is
// answered first.
func (bc *backendConn) capability() ([]string, error) {
	if err := bc.finishID(); err != nil {
		return nil, err
	}
	return bc.readCapability(bc.writeCommand("CAPABILITY"), nil)
}

// writeCommand buffers "TAG NAME" with a new tag and returns the tag.
func (bc *backendConn) writeCommand(name string) string {
	tag := bc.nextTag()
	_, _ = bc.Writer().WriteString(tag + " " + name + "\r\n") // an error sticks in bw, seen at Flush
	return tag
}

// readCapability flushes the buffer and reads the answer to the CAPABILITY
// command tag. With keep, the other untagged responses on the way are
// appended to *keep as received, up to maxBackendResponse bytes in all.
func (bc *backendConn) readCapability(tag string, keep *[]byte) ([]string, error) {
	if err := bc.Writer().Flush(); err != nil {
		return nil, fmt.Errorf("CAPABILITY: %w", err)
	}
	var caps []string
	for range maxBackendResponses {
		resp, err := bc.read()
		if err != nil {
			return nil, fmt.Errorf("CAPABILITY: %w", err)
		}
		if c := resp.Caps(); c != nil {
			caps = c
		}
		if resp.Tag == tag {
			if resp.Type != "OK" {
				return nil, fmt.Errorf("CAPABILITY: %s %s", resp.Type, wire.SafeText(resp.Text))
			}
			if caps == nil {
				caps = []string{}
			}
			return caps, nil
		}
		if resp.Tag == "*" && resp.Type == "BYE" {
			return nil, fmt.Errorf("CAPABILITY: BYE %s", wire.SafeText(resp.Text))
		}
		if keep != nil && resp.Tag == "*" && resp.Type != "CAPABILITY" {
			if len(*keep)+len(resp.Raw) > maxBackendResponse {
				return nil, fmt.Errorf("CAPABILITY: over %d bytes of other responses before the answer", maxBackendResponse)
			}
			*keep = append(*keep, resp.Raw...)
		}
	}
	return nil, fmt.Errorf("CAPABILITY: %w", errTooManyResponses)
}

func (bc *backendConn) nextTag() string {
	bc.seq++
	return "pg" + strconv.Itoa(bc.seq)
}

func (bc *backendConn) writer() *wire.Writer {
	return &wire.Writer{
		W:            bc.Writer(),
		LiteralPlus:  wire.HasCap(bc.caps, "LITERAL+"),
		LiteralMinus: wire.HasCap(bc.caps, "LITERAL-"),
		Continue:     bc.waitContinue,
	}
}

func (bc *backendConn) send(s string) error {
	if _, err := bc.Writer().WriteString(s); err != nil {
		return err
	}
	return bc.Writer().Flush()
}

func (bc *backendConn) read() (*wire.Response, error) {
	return wire.ReadResponse(bc.Reader(), maxBackendResponse)
}

// readTagged reads until the tagged response for tag, keeping
// capabilities sent on the way; a continuation request is returned too.
func (bc *backendConn) readTagged(tag string) (*wire.Response, error) {
	return bc.readTaggedKeeping(tag, "")
}

// readTaggedKeeping is readTagged; the answer to the command sent with
// tag keep (the login pipelined behind the ID, see finishID), if it comes
// first, is kept for a later readTagged of its tag.
func (bc *backendConn) readTaggedKeeping(tag, keep string) (*wire.Response, error) {
	if e := bc.early; e != nil && e.Tag == tag {
		bc.early = nil
		return e, nil
	}
	for range maxBackendResponses {
		resp, err := bc.read()
		if err != nil {
			return nil, err
		}
		if c := resp.Caps(); c != nil {
			bc.caps = c
		}
		switch {
		case resp.Tag == tag || resp.Tag == "+":
			return resp, nil
		case resp.Tag == "*" && resp.Type == "BYE":
			return nil, fmt.Errorf("backend said BYE: %s", wire.SafeText(resp.Text))
		case keep != "" && resp.Tag == keep && bc.early == nil:
			// The command behind the ID, answered before it: kept for
			// its reader, who would otherwise wait for it in vain.
			bc.early = resp
		}
	}
	return nil, errTooManyResponses
}

// continueRefused: the backend answered a synchronizing literal with a
// tagged response instead of "+".
type continueRefused struct{ resp *wire.Response }

func (e *continueRefused) Error() string {
	return "literal refused: " + e.resp.Type + " " + wire.SafeText(e.resp.Text)
}

// waitContinue reads the "+" a synchronizing literal needs.
func (bc *backendConn) waitContinue() error {
	for range maxBackendResponses {
		resp, err := bc.read()
		if err != nil {
			return err
		}
		switch {
		case resp.Tag == "+":
			return nil
		case resp.Tag == "*" && resp.Type != "BYE":
			continue
		default:
			return &continueRefused{resp}
		}
	}
	return errTooManyResponses
}
