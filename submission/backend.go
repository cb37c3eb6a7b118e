package submission

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission/wire"
)

// Bounds on a backend's replies before login: a 334 challenge may be as
// long as an AUTH exchange line.
const (
	maxBackendLine  = wire.DefaultMaxAuthLine
	maxBackendLines = 100
	maxChallenges   = 16
)

// backendConn is SMTP's side of a backend during login.
type backendConn struct {
	*gateway.Backend
	c       *conn // the client's session
	exts    wire.Extensions
	ok      *wire.Reply // the backend's 235
	relayed bool        // the client answered a challenge of the backend
}

// loginAll brings the backend to the point where it takes AUTH (greeting,
// EHLO, STARTTLS, XCLIENT and EHLO again) and authenticates. It returns
// nil when logged in, a *gateway.Error when the backend refused the
// login, another error when the backend failed.
func (bc *backendConn) loginAll(lg gateway.Login, rt route.Route) error {
	if !bc.Route.LoginXCLIENT {
		if _, err := bc.prepare(""); err != nil {
			return err
		}
		return bc.auth(lg, rt)
	}
	if !rt.Checked || lg.Creds.Password == "" {
		return errUnchecked
	}
	user := cmp.Or(rt.Login, lg.Account)
	named, err := bc.prepare(user)
	if err != nil {
		return err
	}
	if !named {
		if err := bc.xclientLogin(user); err != nil {
			return err
		}
	}
	bc.ok = &wire.Reply{Code: 235, Enhanced: "2.7.0", Lines: []string{"Authentication successful"}}
	return nil
}

// errUnchecked: a backend with login=xclient for a route whose source did
// not check the password; the backend would take anyone's word.
var errUnchecked = errors.New("login=xclient needs a route whose source checked the password (type: http with pass_password: true, not cached): refused")

// errNoXClientLogin: a backend with login=xclient that does not offer
// XCLIENT LOGIN to the proxy.
var errNoXClientLogin = errors.New("login=xclient: the backend's XCLIENT does not take LOGIN (is the proxy in its smtpd_authorized_xclient_hosts?)")

// xclientLogin names the account with XCLIENT LOGIN= alone, for a
// login=xclient backend that gets no client address by XCLIENT
// (client_addr=proxy or none; else prepare named it with the address).
// login=xclient is nginx's default, for a Postfix without SASL that
// trusts the proxy's XCLIENT (smtpd_authorized_xclient_hosts). The
// route's source must have checked the password just now
// (route.Route.Checked): pipegate never checks one itself. The new
// session then says EHLO in the client's name, as after any XCLIENT.
func (bc *backendConn) xclientLogin(user string) error {
	params, ok := bc.exts.Params("XCLIENT")
	if !ok || !hasMech(params, "LOGIN") { // the same case-blind match as AUTH's list
		return errNoXClientLogin
	}
	line := "XCLIENT LOGIN=" + wire.XText(user)
	if len(line)+2 > wire.DefaultMaxLine {
		return fmt.Errorf("login=xclient: the account is too long for XCLIENT (%d octets)", len(user))
	}
	rep, err := bc.command(line)
	if err != nil {
		return fmt.Errorf("XCLIENT LOGIN: %w", err)
	}
	if rep.Code != 220 {
		return fmt.Errorf("XCLIENT LOGIN: %d %s", rep.Code, wire.SafeText(rep.Text()))
	}
	return bc.ehlo(bc.c.helo)
}

// prepare reads the greeting and says EHLO: as the proxy when XCLIENT is
// to follow (Postfix and Dovecot take it from a trusted client only, and
// the client's name goes in HELO=), else in the client's name. After
// STARTTLS (RFC 3207 section 4.2) and after XCLIENT (which restarts the
// session with a new 220 greeting) EHLO is said again, the last time in
// the client's name, which the backend's Received line then shows.
//
// login, when not "", is the account a login=xclient backend is to take
// from XCLIENT LOGIN=: it goes in the same XCLIENT as the client's
// address, since Postfix checks smtpd_authorized_xclient_hosts again
// against the address an XCLIENT gave, and so refuses a second XCLIENT.
// named reports that it went.
func (bc *backendConn) prepare(login string) (named bool, err error) {
	greet, err := bc.read()
	if err != nil {
		return false, fmt.Errorf("greeting: %w", err)
	}
	if greet.Code != 220 {
		return false, fmt.Errorf("greeting: %d %s", greet.Code, wire.SafeText(greet.Text()))
	}
	xclient := bc.Route.ClientAddr == route.ClientAddrXCLIENT
	name := bc.c.helo
	if xclient {
		name = bc.c.host
	}
	if err := bc.ehlo(name); err != nil {
		return false, err
	}
	if bc.Route.TLS == route.TLSStartTLS {
		if err := bc.startTLS(); err != nil {
			return false, err
		}
		if err := bc.ehlo(name); err != nil {
			return false, err
		}
	}
	if !xclient {
		return false, nil
	}
	params, ok := bc.exts.Params("XCLIENT")
	if !ok {
		if login != "" {
			return false, errNoXClientLogin
		}
		bc.c.s.Logger().Warn("submission: backend lacks XCLIENT (is the proxy in its trusted networks?), client address not sent", "backend", bc.Route.Addr)
		return false, nil
	}
	sent, err := bc.xclient(params, login)
	if err != nil || !sent {
		return false, err
	}
	return login != "", bc.ehlo(bc.c.helo)
}

// ehlo says EHLO name and keeps the extensions of the 250 reply.
func (bc *backendConn) ehlo(name string) error {
	rep, err := bc.command("EHLO " + name)
	if err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if rep.Code != 250 {
		return fmt.Errorf("EHLO: %d %s", rep.Code, wire.SafeText(rep.Text()))
	}
	bc.exts = rep.Extensions()
	return nil
}

// startTLS runs STARTTLS. Bytes the backend sent after its 220 would be
// plaintext injected before TLS: refused (gateway.Backend.StartTLS).
func (bc *backendConn) startTLS() error {
	if !bc.exts.Has("STARTTLS") {
		return fmt.Errorf("STARTTLS: not offered by the backend")
	}
	rep, err := bc.command("STARTTLS")
	if err != nil {
		return fmt.Errorf("STARTTLS: %w", err)
	}
	if rep.Code != 220 {
		return fmt.Errorf("STARTTLS refused: %d %s", rep.Code, wire.SafeText(rep.Text()))
	}
	return bc.StartTLS()
}

// xclient sends the client's address, port, HELO name, protocol, session
// ID and the proxy TTL, as far as the backend's XCLIENT lists them
// (Dovecot: ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT FORWARD;
// Postfix: NAME ADDR PORT PROTO HELO REVERSE_NAME LOGIN DESTADDR
// DESTPORT), and LOGIN=login when login is not "" (login=xclient). sent
// is false when the backend refused it: the login goes on, the backend
// then sees the proxy's address; with a login to name, that is an error.
func (bc *backendConn) xclient(params []string, login string) (sent bool, err error) {
	if login != "" && !hasMech(params, "LOGIN") {
		return false, errNoXClientLogin
	}
	a := xclientAttrs{
		client: bc.c.client(), local: bc.c.s.Local(),
		helo: bc.c.helo, esmtp: bc.c.esmtp,
		session: bc.c.s.ID(), ttl: bc.c.s.ProxyTTL() - 1,
		login: login,
	}
	line := xclientLine(params, a)
	if login != "" && len(line)+2 > wire.DefaultMaxLine {
		// The client's EHLO name goes first, before the login is lost.
		a.helo = "[UNAVAILABLE]"
		if line = xclientLine(params, a); len(line)+2 > wire.DefaultMaxLine {
			return false, fmt.Errorf("login=xclient: the account is too long for XCLIENT (%d octets)", len(login))
		}
	}
	if line == "" {
		return false, nil
	}
	rep, err := bc.command(line)
	if err != nil {
		return false, fmt.Errorf("XCLIENT: %w", err)
	}
	if rep.Code != 220 {
		if login != "" {
			return false, fmt.Errorf("XCLIENT LOGIN: %d %s", rep.Code, wire.SafeText(rep.Text()))
		}
		bc.c.s.Logger().Warn("submission: backend refused XCLIENT, client address not sent", "backend", bc.Route.Addr,
			"reply", strconv.Itoa(rep.Code)+" "+wire.SafeText(rep.Text()))
		return false, nil
	}
	return true, nil
}

// xclientAttrs are what XCLIENT may tell.
type xclientAttrs struct {
	client, local netip.AddrPort
	helo          string
	esmtp         bool
	session       string
	ttl           int
	login         string // LOGIN=, for login=xclient
}

// xclientLine builds "XCLIENT NAME=value ..." with the attributes the
// backend lists, values xtext-encoded, IPv6 addresses with "IPV6:"
// (Postfix's XCLIENT_README); "" when there is nothing to send.
func xclientLine(params []string, a xclientAttrs) string {
	has := map[string]bool{}
	for _, p := range params {
		has[strings.ToUpper(p)] = true
	}
	var b strings.Builder
	add := func(name, value string) {
		if has[name] && value != "" {
			b.WriteString(" " + name + "=" + wire.XText(value))
		}
	}
	if a.client.IsValid() {
		add("ADDR", addrValue(a.client.Addr()))
		if a.client.Port() != 0 { // none when a proxy in front said no PORT
			add("PORT", strconv.Itoa(int(a.client.Port())))
		}
	}
	if len(wire.XText(a.helo)) <= wire.MaxXClientName {
		add("HELO", a.helo)
	} else {
		// Postfix (and pipegate) refuse a longer HELO, and the command
		// would pass 512 octets: say it is not known rather than lose
		// the whole XCLIENT, the client's address with it.
		add("HELO", "[UNAVAILABLE]")
	}
	if a.esmtp {
		add("PROTO", "ESMTP")
	} else {
		add("PROTO", "SMTP")
	}
	if a.local.IsValid() {
		add("DESTADDR", addrValue(a.local.Addr()))
		add("DESTPORT", strconv.Itoa(int(a.local.Port())))
	}
	add("SESSION", a.session)
	if a.ttl > 0 {
		add("TTL", strconv.Itoa(a.ttl))
	}
	add("LOGIN", a.login)
	if b.Len() == 0 {
		return ""
	}
	return "XCLIENT" + b.String()
}

func addrValue(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		return "IPV6:" + ip.String()
	}
	return ip.String()
}

// command sends one line and reads the reply.
func (bc *backendConn) command(line string) (*wire.Reply, error) {
	if err := bc.send(line); err != nil {
		return nil, err
	}
	return bc.read()
}

func (bc *backendConn) send(line string) error {
	if _, err := bc.Writer().WriteString(line + "\r\n"); err != nil {
		return err
	}
	return bc.Writer().Flush()
}

func (bc *backendConn) read() (*wire.Reply, error) {
	return wire.ReadReply(bc.Reader(), maxBackendLine, maxBackendLines)
}
