package imap

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/route"
)

// login logs in to the backend as lg.Account and returns the backend's
// tagged answer (OK, NO or BAD). An error means the backend failed (I/O,
// protocol), not that the login was refused.
//
// Password logins use LOGIN, or AUTHENTICATE PLAIN when the backend
// advertises LOGINDISABLED, for a master-user login, or for credentials
// longer than maxLoginArgs when the backend offers AUTH=PLAIN. A backend
// with LOGINDISABLED and no AUTH=PLAIN is not sent the password: an error
// (the backend failed), not a refusal. The route may replace the name
// (rt.Login) and the password (rt.Password, auth_http's Auth-Pass).
// XOAUTH2 and OAUTHBEARER messages are rebuilt around the decided name and
// the backend's challenges relayed to the client.
func (bc *backendConn) login(lg gateway.Login, rt route.Route) (*wire.Response, error) {
	if msg := lg.Creds.Message(cmp.Or(rt.Login, lg.Account)); msg != nil {
		return bc.authenticate(lg.Creds.Mechanism, base64.StdEncoding.EncodeToString(msg), true)
	}
	user, authz := lg.Authcid, ""
	if lg.Master() {
		authz = lg.Account
	}
	if rt.Login != "" {
		if authz != "" {
			authz = rt.Login
		} else {
			user = rt.Login
		}
	}
	pass := cmp.Or(rt.Password, lg.Password)
	// Dovecot's imap-login refuses a LOGIN line past its input buffer
	// ("BYE Input buffer full", about 1 KiB) but takes the same credentials
	// in AUTHENTICATE PLAIN (a token used as a password): long ones go so
	// when the backend offers it.
	long := len(user)+len(pass) > maxLoginArgs && wire.HasCap(bc.caps, "AUTH=PLAIN")
	if authz == "" && !long && !wire.HasCap(bc.caps, "LOGINDISABLED") {
		return bc.loginCommand(user, pass)
	}
	if wire.HasCap(bc.caps, "LOGINDISABLED") && !wire.HasCap(bc.caps, "AUTH=PLAIN") {
		// Neither LOGIN nor PLAIN here: the backend takes passwords only
		// over TLS (Cyrus's allowplaintext: no, its default; Dovecot's
		// disable_plaintext_auth). The route is wrong, not the password:
		// nothing is sent, and the next backend is tried.
		return nil, bc.noPasswordLogin()
	}
	msg := authz + "\x00" + user + "\x00" + pass
	return bc.authenticate("PLAIN", base64.StdEncoding.EncodeToString([]byte(msg)), false)
}

// maxLoginArgs is the longest name and password (together) sent in a
// backend LOGIN when the backend also offers AUTHENTICATE PLAIN.
const maxLoginArgs = 512

// loginCommand sends LOGIN, with strings quoted or as literals as the
// backend takes them. It goes in the same write as a pending ID unless it
// needs a synchronizing literal, whose "+" must come before anything
// else is sent.
func (bc *backendConn) loginCommand(user, pass string) (*wire.Response, error) {
	if !bc.noSyncLiteral(user, pass) {
		if err := bc.finishID(); err != nil {
			return nil, err
		}
	}
	tag := bc.nextTag()
	w := bc.writer()
	w.Atom(tag).SP().Atom("LOGIN").SP().String(user).SP().String(pass).CRLF()
	if err := w.Flush(); err != nil {
		var cr *continueRefused
		if errors.As(err, &cr) && cr.resp.Tag == tag && cr.resp.Type != "OK" {
			return cr.resp, nil // NO or BAD: the literal refused
		}
		// An OK before the literal came did not check it: a broken
		// backend, not a login.
		return nil, fmt.Errorf("LOGIN: %w", err)
	}
	bc.behindID = tag
	if err := bc.finishID(); err != nil {
		return nil, err
	}
	resp, err := bc.readTagged(tag)
	if err != nil {
		return nil, fmt.Errorf("LOGIN: %w", err)
	}
	if resp.Tag == "+" {
		return nil, errors.New("LOGIN: unexpected continuation request")
	}
	return resp, nil
}

// authenticate runs AUTHENTICATE mech with the initial response ir
// (base64). With relay, further challenges go to the client and its
// answers back (XOAUTH2 sends its error that way); else a challenge is
// answered with "*" (cancel).
func (bc *backendConn) authenticate(mech, ir string, relay bool) (*wire.Response, error) {
	tag := bc.nextTag()
	var cancelled *gateway.Error // the client cancelled a relayed exchange
	if ir == "" {
		ir = "="
	}
	if wire.HasCap(bc.caps, "SASL-IR") {
		// In the same write as a pending ID, whose answer comes first.
		if err := bc.send(tag + " AUTHENTICATE " + mech + " " + ir + "\r\n"); err != nil {
			return nil, err
		}
		bc.behindID = tag
		if err := bc.finishID(); err != nil {
			return nil, err
		}
	} else {
		if err := bc.finishID(); err != nil {
			return nil, err
		}
		if err := bc.send(tag + " AUTHENTICATE " + mech + "\r\n"); err != nil {
			return nil, err
		}
		resp, err := bc.readTagged(tag)
		if err != nil {
			return nil, fmt.Errorf("AUTHENTICATE %s: %w", mech, err)
		}
		if resp.Tag != "+" {
			if resp.Type == "OK" { // a broken backend, not a login
				return nil, fmt.Errorf("AUTHENTICATE %s: OK before the credentials were sent", mech)
			}
			return resp, nil
		}
		if err := bc.send(ir + "\r\n"); err != nil {
			return nil, err
		}
	}
	for range 16 {
		resp, err := bc.readTagged(tag)
		if err != nil {
			return nil, fmt.Errorf("AUTHENTICATE %s: %w", mech, err)
		}
		if resp.Tag != "+" {
			if cancelled != nil {
				return nil, cancelled // the backend's answer to "*" does not count
			}
			return resp, nil
		}
		answer := "*"
		if relay {
			line, err := bc.c.relayChallenge(bc.clientTag, resp.Text)
			if err != nil {
				return nil, err
			}
			answer, cancelled = gateway.RelayAnswer(line)
		}
		if err := bc.send(answer + "\r\n"); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("AUTHENTICATE %s: too many challenges", mech)
}

// noSyncLiteral reports whether every string can be sent without a
// synchronizing literal: quoted, or as a literal the backend takes without
// a continuation request (LITERAL+, or LITERAL- up to its size).
func (bc *backendConn) noSyncLiteral(strs ...string) bool {
	plus, minus := wire.HasCap(bc.caps, "LITERAL+"), wire.HasCap(bc.caps, "LITERAL-")
	for _, s := range strs {
		if !wire.Quotable(s) && !plus && (!minus || len(s) > wire.LiteralMinusMax) {
			return false
		}
	}
	return true
}

// relayChallenge passes a backend's SASL challenge to the client and
// returns the client's answer line. A client that cannot answer ends the
// session; an answer the wire refuses is the command's (tag's) BAD first.
func (c *conn) relayChallenge(tag, challenge string) (string, error) {
	// Not SafeText: a challenge must not be cut; it is one line already.
	c.writef("+ %s\r\n", strings.Map(dropCRLF, challenge))
	if err := c.flush(); err != nil {
		c.s.End("client write: " + err.Error())
		return "", err
	}
	line, err := c.rd.ReadLine()
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			c.taggedWireError(tag, we)
		} else {
			c.readFailed(err) // ends the session: BYE on a timeout, EOF
		}
		if !c.s.Ended() {
			c.bye("Cannot continue after this error", "client protocol error during a relayed SASL exchange")
		}
		return "", err
	}
	return string(line), nil
}

// dropCRLF, for strings.Map, removes CR, LF and NUL.
func dropCRLF(r rune) rune {
	if r == '\r' || r == '\n' || r == 0 {
		return -1
	}
	return r
}

// noPasswordLogin is the error of a backend that takes no password on
// this connection (LOGINDISABLED without AUTH=PLAIN), with what to do.
func (bc *backendConn) noPasswordLogin() error {
	if bc.Route.TLS == route.TLSNone {
		return errors.New("the backend takes no password on a plain connection (LOGINDISABLED, no AUTH=PLAIN): route it with imap+starttls:// or imaps://, or let it take plaintext logins (Cyrus: allowplaintext: yes)")
	}
	return errors.New("the backend takes no password login (LOGINDISABLED, no AUTH=PLAIN)")
}
