package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/route"
)

// maxBackendResponse bounds one response read from a backend before login.
const maxBackendResponse = 64 << 10

// backendConn is a connection to a backend during login.
type backendConn struct {
	b       route.Backend
	conn    net.Conn // raw, or TLS over it
	br      *bufio.Reader
	bw      *bufio.Writer
	caps    []string
	isTLS   bool
	tlsBase *tls.Config // BackendTLS when the dial began
	seq     int
	stop    func() bool // ends the context watch
	// pendingID is the tag of an ID written but not yet answered (maybe
	// not yet flushed), so that login can pipeline behind it.
	pendingID string
}

// connectBackend dials b and brings it to the point where it takes a login:
// PROXY header, TLS, greeting, STARTTLS, capabilities, and an ID written
// but not yet answered (see finishID).
func (ss *session) connectBackend(b route.Backend) (*backendConn, error) {
	dyn := ss.srv.current()
	deadline := time.Now().Add(orDuration(ss.srv.BackendTimeout, DefaultBackendTimeout))
	c, err := dialBackend(ss.ctx, b, orDuration(ss.srv.DialTimeout, DefaultDialTimeout), deadline,
		dyn.backendTLS, ss.client, ss.local)
	if err != nil {
		return nil, err
	}
	bc := &backendConn{b: b, conn: c, isTLS: b.TLS == route.TLSImplicit, tlsBase: dyn.backendTLS}
	// Shutdown's deadline (or the caller's ctx) interrupts the dialogue.
	bc.stop = context.AfterFunc(ss.ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	if err := bc.prepare(ss); err != nil {
		bc.close()
		return nil, fmt.Errorf("backend %s: %w", b.Addr, err)
	}
	return bc, nil
}

func (bc *backendConn) prepare(ss *session) error {
	bc.br = bufio.NewReader(bc.conn)
	bc.bw = bufio.NewWriter(bc.conn)
	greet, err := bc.read()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if greet.Tag != "*" || greet.Type != "OK" {
		return fmt.Errorf("greeting is not OK: %q", wire.SafeText(string(greet.Raw)))
	}
	bc.caps = greet.Caps()
	if bc.b.TLS == route.TLSStartTLS {
		if err := bc.startTLS(ss); err != nil {
			return err
		}
	}
	if bc.caps == nil {
		// Nothing can be pipelined behind: ID may be unknown to the
		// backend (go-imap's server says BYE to unknown commands), and
		// the login command depends on the capabilities.
		if bc.caps, err = bc.capability(ss); err != nil {
			return err
		}
	}
	if bc.b.ClientAddr == route.ClientAddrID {
		if !wire.HasCap(bc.caps, "ID") {
			ss.log.Debug("imap: backend lacks ID, client address not sent", "backend", bc.b.Addr)
		} else if err := bc.writeID(ss); err != nil {
			return err
		}
	}
	// The ID stays in the buffer (or unanswered): login sends its command
	// in the same write when that is safe, see finishID.
	return nil
}

// startTLS runs STARTTLS. Bytes the backend sent after its OK would be
// plaintext injected before TLS: refused.
func (bc *backendConn) startTLS(ss *session) error {
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
	if bc.br.Buffered() > 0 {
		return fmt.Errorf("STARTTLS: %d bytes of plaintext after the OK", bc.br.Buffered())
	}
	tc := tls.Client(bc.conn, backendTLSConfig(bc.tlsBase, bc.b))
	if err := tc.HandshakeContext(ss.ctx); err != nil {
		return fmt.Errorf("TLS handshake after STARTTLS: %w", err)
	}
	bc.conn, bc.isTLS = tc, true
	bc.br.Reset(bc.conn)
	bc.bw.Reset(bc.conn)
	bc.caps = nil // to be asked again over TLS (RFC 9051 section 6.2.1)
	return nil
}

// writeID writes, without flushing, an ID that tells the backend who the
// client is (Dovecot trusts this from login_trusted_networks), how many
// more proxy hops are allowed (x-proxy-ttl), then the client's own ID
// fields. Its answer is read by finishID. A synchronizing literal (a
// client's ID value that cannot be quoted) is waited for here, before
// anything else is pipelined behind it.
func (bc *backendConn) writeID(ss *session) error {
	tag := bc.nextTag()
	w := bc.writer()
	w.Atom(tag).SP().Atom("ID").SP().Atom("(").String("x-session-id").SP().String(ss.id)
	if ss.client.IsValid() {
		w.SP().String("x-originating-ip").SP().String(ss.client.Addr().String())
		w.SP().String("x-originating-port").SP().String(strconv.Itoa(int(ss.client.Port())))
	}
	if ss.local.IsValid() {
		w.SP().String("x-connected-ip").SP().String(ss.local.Addr().String())
		w.SP().String("x-connected-port").SP().String(strconv.Itoa(int(ss.local.Port())))
	}
	w.SP().String("x-proxy-ttl").SP().String(strconv.Itoa(ss.proxyTTL() - 1))
	for _, f := range ss.clientID {
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
func (bc *backendConn) finishID(ss *session) error {
	tag := bc.pendingID
	if tag == "" {
		return nil
	}
	bc.pendingID = ""
	if err := bc.bw.Flush(); err != nil {
		return fmt.Errorf("ID: %w", err)
	}
	resp, err := bc.readTagged(tag)
	if err != nil {
		return fmt.Errorf("ID: %w", err)
	}
	if resp.Tag == "+" {
		return errors.New("ID: unexpected continuation request")
	}
	if resp.Type != "OK" {
		ss.log.Debug("imap: backend refused ID", "backend", bc.b.Addr, "answer", resp.Type+" "+wire.SafeText(resp.Text))
	}
	return nil
}

// capability asks the backend for its capabilities. Any pending ID is
// answered first.
func (bc *backendConn) capability(ss *session) ([]string, error) {
	if err := bc.finishID(ss); err != nil {
		return nil, err
	}
	return bc.readCapability(bc.writeCommand("CAPABILITY"))
}

// writeCommand buffers "TAG NAME" with a new tag and returns the tag.
func (bc *backendConn) writeCommand(name string) string {
	tag := bc.nextTag()
	_, _ = bc.bw.WriteString(tag + " " + name + "\r\n") // an error sticks in bw, seen at Flush
	return tag
}

// readCapability flushes the buffer and reads the answer to the CAPABILITY
// command tag.
func (bc *backendConn) readCapability(tag string) ([]string, error) {
	if err := bc.bw.Flush(); err != nil {
		return nil, fmt.Errorf("CAPABILITY: %w", err)
	}
	var caps []string
	for {
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
	}
}

func (bc *backendConn) nextTag() string {
	bc.seq++
	return "pg" + strconv.Itoa(bc.seq)
}

func (bc *backendConn) writer() *wire.Writer {
	return &wire.Writer{
		W:            bc.bw,
		LiteralPlus:  wire.HasCap(bc.caps, "LITERAL+"),
		LiteralMinus: wire.HasCap(bc.caps, "LITERAL-"),
		Continue:     bc.waitContinue,
	}
}

func (bc *backendConn) send(s string) error {
	if _, err := bc.bw.WriteString(s); err != nil {
		return err
	}
	return bc.bw.Flush()
}

func (bc *backendConn) read() (*wire.Response, error) {
	return wire.ReadResponse(bc.br, maxBackendResponse)
}

// readTagged reads until the tagged response for tag, keeping
// capabilities sent on the way; a continuation request is returned too.
func (bc *backendConn) readTagged(tag string) (*wire.Response, error) {
	for {
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
		}
	}
}

// continueRefused: the backend answered a synchronizing literal with a
// tagged response instead of "+".
type continueRefused struct{ resp *wire.Response }

func (e *continueRefused) Error() string {
	return "literal refused: " + e.resp.Type + " " + wire.SafeText(e.resp.Text)
}

// waitContinue reads the "+" a synchronizing literal needs.
func (bc *backendConn) waitContinue() error {
	for {
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
}

func (bc *backendConn) close() {
	bc.stop()
	_ = bc.conn.Close()
}
