package pop3

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pop3/wire"
	"github.com/pipegate/pipegate/route"
)

// maxBackendLine bounds one line read from a backend before login: more
// than RFC 2449's 512 octets, for a SASL challenge (an OAuth error) that
// a backend sends on one line.
const maxBackendLine = 16 << 10

// Bounds on a backend's CAPA answer: twice RFC 2449's 512 octets a line,
// and ten times the lines Dovecot sends; 100 KiB in all, where
// maxBackendLine a line would let one login hold 16 MiB.
const (
	maxCapaLine  = 1024
	maxCapaLines = 100
)

// backendConn is POP3's side of a backend during login.
type backendConn struct {
	*gateway.Backend
	c    *conn             // the client's session
	caps wire.Capabilities // nil when the backend knows no CAPA
	// xclientGreeting: the greeting said "[XCLIENT]" (Dovecot does to
	// its login_trusted_networks).
	xclientGreeting bool
	ok              *wire.Response // the backend's +OK to the login
}

// loginAll brings the backend to the point where it takes a login
// (greeting, STLS, CAPA, XCLIENT), logs in, and keeps the backend's +OK.
// It returns nil when logged in, a *gateway.Error when the backend refused
// the login, another error when the backend failed.
func (bc *backendConn) loginAll(lg gateway.Login, rt route.Route) error {
	if err := bc.prepare(); err != nil {
		return err
	}
	resp, err := bc.login(lg, rt)
	if err != nil {
		return err
	}
	if resp.Status != wire.StatusOK {
		e := &gateway.Error{Code: gateway.CodeAuthFailed, Text: resp.Text, Detail: resp.Code}
		switch resp.Code {
		case wire.CodeSysTemp:
			// The backend's own trouble (Dovecot: "Temporary
			// authentication failure"): the next backend is tried.
			e.Code = gateway.CodeUnavailable
		case wire.CodeInUse, wire.CodeLoginDelay:
			// Right credentials, account not available now (RFC 2449
			// section 8): relayed, not a failed login.
			e.Code = gateway.CodeInUse
		}
		return e
	}
	bc.ok = resp
	return nil
}

// prepare reads the greeting, runs STLS when the route asks for it, learns
// the capabilities, and writes XCLIENT when the route asks for it and the
// backend takes it.
func (bc *backendConn) prepare() error {
	greet, err := bc.read()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if greet.Status != wire.StatusOK {
		return fmt.Errorf("greeting is not +OK: %s [%s] %s", greet.Status, greet.Code, wire.SafeText(greet.Text))
	}
	bc.xclientGreeting = greet.Code == "XCLIENT"
	if bc.Route.TLS == route.TLSStartTLS {
		if err := bc.startTLS(); err != nil {
			return err
		}
	}
	if bc.caps, err = bc.capa(); err != nil {
		return err
	}
	if bc.Route.ClientAddr == route.ClientAddrXCLIENT {
		if !bc.xclientGreeting && !bc.caps.Has("XCLIENT") {
			bc.c.s.Logger().Debug("pop3: backend offers no XCLIENT, client address not passed", "backend", bc.Route.Addr)
			return nil
		}
		return bc.xclient()
	}
	return nil
}

// startTLS runs STLS (RFC 2595 section 4). Bytes the backend sent after
// its +OK would be plaintext injected before TLS: Backend.StartTLS
// refuses them.
func (bc *backendConn) startTLS() error {
	if err := bc.send("STLS\r\n"); err != nil {
		return fmt.Errorf("STLS: %w", err)
	}
	resp, err := bc.read()
	if err != nil {
		return fmt.Errorf("STLS: %w", err)
	}
	if resp.Status != wire.StatusOK {
		return fmt.Errorf("STLS refused: %s", wire.SafeText(resp.Text))
	}
	return bc.StartTLS()
}

// capa asks for the capabilities; a backend that does not know CAPA
// (RFC 1939 only) has none.
func (bc *backendConn) capa() (wire.Capabilities, error) {
	if err := bc.send("CAPA\r\n"); err != nil {
		return nil, fmt.Errorf("CAPA: %w", err)
	}
	resp, err := wire.ReadMultiLine(bc.Reader(), maxCapaLine, maxCapaLines)
	if err != nil {
		return nil, fmt.Errorf("CAPA: %w", err)
	}
	if resp.Status != wire.StatusOK {
		return nil, nil
	}
	return wire.ParseCapa(resp.Lines), nil
}

// xclient tells the backend who the client is and how many more proxy
// hops are allowed, in the form Dovecot's own POP3 proxy sends (Dovecot
// trusts it from login_trusted_networks), and reads the answer before the
// login is sent, even to a backend with PIPELINING, as Dovecot's proxy
// does: with XCLIENT and AUTH in one write, the backend's "+OK Updated"
// waited for our delayed ACK and every login took ~40 ms more
// (bench/mail.sh). A backend that refuses or ignores XCLIENT is still
// logged in to: it sees the gateway's address.
func (bc *backendConn) xclient() error {
	s := bc.c.s
	var b strings.Builder
	b.WriteString("XCLIENT")
	if client := bc.c.client(); client.IsValid() {
		b.WriteString(" ADDR=" + client.Addr().Unmap().String())
		if client.Port() != 0 { // none when a proxy in front said no PORT
			b.WriteString(" PORT=" + strconv.Itoa(int(client.Port())))
		}
	}
	b.WriteString(" SESSION=" + s.ID() + " TTL=" + strconv.Itoa(s.ProxyTTL()-1) + "\r\n")
	if err := bc.send(b.String()); err != nil {
		return fmt.Errorf("XCLIENT: %w", err)
	}
	resp, err := bc.read()
	if err != nil {
		return fmt.Errorf("XCLIENT: %w", err)
	}
	switch {
	case resp.Status != wire.StatusOK:
		s.Logger().Debug("pop3: backend refused XCLIENT", "backend", bc.Route.Addr, "answer", wire.SafeText(resp.Text))
	case strings.Contains(strings.ToLower(resp.Text), "not from trusted"):
		// Dovecot's answer to an address outside login_trusted_networks.
		s.Logger().Debug("pop3: backend ignored XCLIENT", "backend", bc.Route.Addr, "answer", wire.SafeText(resp.Text))
	}
	return nil
}

func (bc *backendConn) send(s string) error {
	if _, err := bc.Writer().WriteString(s); err != nil {
		return err
	}
	return bc.Writer().Flush()
}

func (bc *backendConn) read() (*wire.Response, error) {
	return wire.ReadResponse(bc.Reader(), maxBackendLine)
}
