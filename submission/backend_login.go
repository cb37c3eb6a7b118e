package submission

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission/wire"
)

// auth logs in to the backend as lg.Account. Password logins use AUTH
// PLAIN with an initial response (AUTH LOGIN when the backend lists LOGIN
// and not PLAIN); the route may replace the name (rt.Login) and the
// password (rt.Password, auth_http's Auth-Pass). XOAUTH2 and OAUTHBEARER
// messages are rebuilt around the decided name and the backend's
// challenges relayed to the client.
func (bc *backendConn) auth(lg gateway.Login, rt route.Route) error {
	mechs, ok := bc.exts.Params("AUTH")
	if !ok {
		return errors.New("the backend offers no AUTH (plaintext authentication off on a plain link?)")
	}
	if msg := lg.Creds.Message(cmp.Or(rt.Login, lg.Account)); msg != nil {
		return bc.authenticate(lg.Creds.Mechanism, msg, true)
	}
	authz, user, pass := passwordLogin(lg, rt)
	if authz == "" && !hasMech(mechs, sasl.Plain) && hasMech(mechs, sasl.Login) {
		return bc.authLogin(user, pass)
	}
	return bc.authenticate(sasl.Plain, []byte(authz+"\x00"+user+"\x00"+pass), false)
}

// passwordLogin is who logs in at the backend with a password: the
// decided account (as authzid of a master login), or the route's Login in
// its place, with the route's Password if it gives one.
func passwordLogin(lg gateway.Login, rt route.Route) (authz, user, pass string) {
	user = lg.Authcid
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
	return authz, user, cmp.Or(rt.Password, lg.Password)
}

func hasMech(mechs []string, m string) bool {
	return slices.ContainsFunc(mechs, func(s string) bool { return strings.EqualFold(s, m) })
}

// authenticate runs AUTH mech with msg as initial response: in the
// command when it fits the 512-octet line (RFC 4954 section 4), else after
// the first "334". With relay, further challenges go to the client and
// its answers back (XOAUTH2 sends its error that way); else a challenge
// is answered with "*" (cancel).
func (bc *backendConn) authenticate(mech string, msg []byte, relay bool) error {
	ir := base64.StdEncoding.EncodeToString(msg)
	var rep *wire.Reply
	var err error
	if line := "AUTH " + mech + " " + cmp.Or(ir, "="); len(line)+2 <= wire.DefaultMaxLine {
		rep, err = bc.command(line)
	} else {
		rep, err = bc.command("AUTH " + mech)
		switch {
		case err != nil:
		case rep.Code == 334:
			rep, err = bc.command(ir)
		case rep.Code == 235: // a broken backend, not a login
			return fmt.Errorf("AUTH %s: 235 before the credentials were sent", mech)
		}
	}
	var cancelled *gateway.Error // the client cancelled a relayed exchange
	for range maxChallenges {
		if err != nil {
			return fmt.Errorf("AUTH %s: %w", mech, err)
		}
		if rep.Code != 334 {
			if cancelled != nil {
				return cancelled // the backend's answer to "*" does not count
			}
			return bc.verdict(mech, rep)
		}
		answer := "*"
		if relay {
			line, err := bc.c.relayChallenge(rep)
			if err != nil {
				return err
			}
			answer, cancelled = gateway.RelayAnswer(line)
			bc.relayed = true
		}
		rep, err = bc.command(answer)
	}
	return fmt.Errorf("AUTH %s: too many challenges", mech)
}

// authLogin runs AUTH LOGIN: the name and the password each after a 334.
func (bc *backendConn) authLogin(user, pass string) error {
	rep, err := bc.command("AUTH LOGIN")
	for _, s := range []string{user, pass} {
		if err != nil {
			return fmt.Errorf("AUTH LOGIN: %w", err)
		}
		if rep.Code == 235 { // a broken backend, not a login
			return errors.New("AUTH LOGIN: 235 before the credentials were sent")
		}
		if rep.Code != 334 {
			return bc.verdict(sasl.Login, rep)
		}
		rep, err = bc.command(base64.StdEncoding.EncodeToString([]byte(s)))
	}
	if err != nil {
		return fmt.Errorf("AUTH LOGIN: %w", err)
	}
	if rep.Code == 334 {
		return errors.New("AUTH LOGIN: a third challenge")
	}
	return bc.verdict(sasl.Login, rep)
}

// verdict turns the backend's final answer to AUTH into loginAll's
// result. 535 (and any 5xx once the client took part in the exchange) is
// the client's failure: answered with the gateway's uniform text, since
// the backend's could tell a wrong password from an unknown account. 4xx
// (454 4.7.0, its auth service is down) is the backend's trouble: the next
// backend is tried. Anything else is a backend that cannot take this
// login at all (534, 538: a configuration to fix).
func (bc *backendConn) verdict(mech string, rep *wire.Reply) error {
	switch {
	case rep.Code == 235:
		bc.ok = rep
		return nil
	case rep.Code == 535 || bc.relayed && rep.Code >= 500:
		bc.c.s.Logger().Debug("submission: backend refused the login", "backend", bc.Route.Addr,
			"reply", strconv.Itoa(rep.Code)+" "+wire.SafeText(rep.Text()))
		return &gateway.Error{Code: gateway.CodeAuthFailed}
	case rep.Code >= 400 && rep.Code < 500:
		return &gateway.Error{Code: gateway.CodeUnavailable, Text: rep.Text()}
	}
	return fmt.Errorf("AUTH %s: %d %s", mech, rep.Code, wire.SafeText(rep.Text()))
}

// relayChallenge passes a backend's 334 challenge to the client and
// returns the client's answer line as sent. A client that cannot answer
// ends the session.
func (c *conn) relayChallenge(rep *wire.Reply) (string, error) {
	challenge := ""
	if len(rep.Lines) > 0 {
		challenge = rep.Lines[0]
	}
	c.reply(334, "", challenge)
	if err := c.flush(); err != nil {
		c.s.End("client write: " + err.Error())
		return "", err
	}
	line, err := c.rd.ReadAuthLine()
	if err != nil {
		c.readFailed(err) // a line too long: 500 and the end; EOF, timeout: the end
		if !c.s.Ended() {
			c.flush()
			c.s.End("client protocol error during a relayed challenge")
		}
		return "", err
	}
	return string(line), nil
}
