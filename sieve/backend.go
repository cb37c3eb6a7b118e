package sieve

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/sieve/wire"
)

// maxBackendLine bounds one response line read from a backend before
// login, its literals included.
const maxBackendLine = 64 << 10

// maxBackendCapLine bounds one capability line of a backend, its literals
// each: Dovecot's longest (SIEVE, the extensions) has some 300 octets.
// With maxBackendLine, a capability response of DefaultMaxCapLines lines
// of four literals each could hold 32 MiB; with this, 4 MiB.
const maxBackendCapLine = 8 << 10

// backendConn is ManageSieve's side of a backend during login.
type backendConn struct {
	*gateway.Backend
	c    *conn // the client's session
	caps wire.Capabilities
	ok   *wire.Response // the backend's OK to the login
}

// loginAll brings the backend to the point where it takes a login
// (capability greeting, STARTTLS, XCLIENT) and logs in. It returns nil
// when logged in, a *gateway.Error when the backend refused the login,
// another error when the backend failed.
func (bc *backendConn) loginAll(lg gateway.Login, rt route.Route) error {
	if err := bc.prepare(); err != nil {
		return err
	}
	return bc.login(lg, rt)
}

func (bc *backendConn) prepare() error {
	caps, resp, err := bc.readCaps()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if resp.Type != "OK" {
		return fmt.Errorf("greeting is %s: %s", resp.Type, wire.SafeText(resp.Text))
	}
	bc.caps = caps
	if bc.Route.TLS == route.TLSStartTLS {
		if err := bc.startTLS(); err != nil {
			return err
		}
	}
	if bc.Route.ClientAddr == route.ClientAddrXCLIENT {
		if !bc.caps.Has("XCLIENT") {
			// Dovecot offers it only to login_trusted_networks.
			bc.c.s.Logger().Debug("sieve: backend does not offer XCLIENT (not trusted?), client address not sent", "backend", bc.Route.Addr)
		} else if err := bc.xclient(); err != nil {
			return err
		}
	}
	return nil
}

// startTLS runs STARTTLS and reads the capabilities the backend sends
// again over TLS (RFC 5804 section 2.2). Bytes the backend sent after its
// OK would be plaintext injected before TLS: refused by Backend.StartTLS.
func (bc *backendConn) startTLS() error {
	if !bc.caps.Has("STARTTLS") {
		return errors.New("STARTTLS: the backend does not offer it")
	}
	resp, err := bc.command([]byte("STARTTLS\r\n"))
	if err != nil {
		return fmt.Errorf("STARTTLS: %w", err)
	}
	if resp.Type != "OK" {
		return fmt.Errorf("STARTTLS refused: %s %s", resp.Type, wire.SafeText(resp.Text))
	}
	if err := bc.StartTLS(); err != nil {
		return err
	}
	caps, resp, err := bc.readCaps()
	if err != nil {
		return fmt.Errorf("capabilities after STARTTLS: %w", err)
	}
	if resp.Type != "OK" {
		return fmt.Errorf("capabilities after STARTTLS: %s %s", resp.Type, wire.SafeText(resp.Text))
	}
	bc.caps = caps
	return nil
}

// xclient tells the backend the client's address, port, the session ID
// and how many more proxy hops are allowed, as Dovecot's own ManageSieve
// proxy does: XCLIENT ADDR=... PORT=... SESSION=... TTL=... (Dovecot takes
// it from login_trusted_networks only). A refusal is logged and the login
// goes on: the backend then sees the proxy's address.
func (bc *backendConn) xclient() error {
	s := bc.c.s
	var b strings.Builder
	b.WriteString("XCLIENT")
	if client := bc.c.client(); client.IsValid() {
		b.WriteString(" ADDR=" + client.Addr().WithZone("").Unmap().String())
		if client.Port() != 0 { // none when a proxy in front said no PORT
			b.WriteString(" PORT=" + strconv.Itoa(int(client.Port())))
		}
	}
	b.WriteString(" SESSION=" + s.ID())
	b.WriteString(" TTL=" + strconv.Itoa(s.ProxyTTL()-1))
	b.WriteString("\r\n")
	resp, err := bc.command([]byte(b.String()))
	if err != nil {
		return fmt.Errorf("XCLIENT: %w", err)
	}
	switch resp.Type {
	case "OK":
	case "BYE":
		return fmt.Errorf("XCLIENT: BYE %s", wire.SafeText(resp.Text))
	default:
		s.Logger().Debug("sieve: backend refused XCLIENT", "backend", bc.Route.Addr, "answer", resp.Type+" "+wire.SafeText(resp.Text))
	}
	return nil
}

// readCaps reads a capability response from the backend.
func (bc *backendConn) readCaps() (wire.Capabilities, *wire.Response, error) {
	return wire.ReadCapabilities(bc.Reader(), maxBackendCapLine, 0)
}

// command sends cmd and reads the status response to it.
func (bc *backendConn) command(cmd []byte) (*wire.Response, error) {
	if err := bc.send(cmd); err != nil {
		return nil, err
	}
	resp, err := bc.read()
	if err != nil {
		return nil, err
	}
	if resp.Type == "" {
		return nil, errors.New("unexpected data line")
	}
	return resp, nil
}

func (bc *backendConn) send(b []byte) error {
	if _, err := bc.Writer().Write(b); err != nil {
		return err
	}
	return bc.Writer().Flush()
}

func (bc *backendConn) read() (*wire.Response, error) {
	return wire.ReadResponse(bc.Reader(), maxBackendLine)
}
