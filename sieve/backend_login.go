package sieve

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/sieve/wire"
)

// maxChallenges bounds the SASL round trips with a backend.
const maxChallenges = 16

// login logs in to the backend as lg.Account with AUTHENTICATE, the
// initial response as a string (quoted, or a literal {n+} when it is
// long): PLAIN for passwords, whatever the client logged in with, the
// name and password the route may replace (rt.Login, rt.Password);
// XOAUTH2 and OAUTHBEARER messages rebuilt around the decided name, the
// backend's challenges relayed to the client. On OK it keeps the answer
// for the client; a NO becomes a *gateway.Error.
func (bc *backendConn) login(lg gateway.Login, rt route.Route) error {
	mech, relay := sasl.Plain, false
	var msg []byte
	if m := lg.Creds.Message(cmp.Or(rt.Login, lg.Account)); m != nil {
		mech, msg, relay = lg.Creds.Mechanism, m, true
	} else {
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
		msg = []byte(authz + "\x00" + user + "\x00" + cmp.Or(rt.Password, lg.Password))
	}
	if offered, _ := bc.caps.Value("SASL"); !slices.Contains(strings.Fields(strings.ToUpper(offered)), mech) {
		// Dovecot offers no mechanism on a plain link with
		// disable_plaintext_auth: the route wants sieve+starttls.
		return fmt.Errorf("AUTHENTICATE: the backend does not offer %s (it offers %q)", mech, wire.SafeText(offered))
	}
	cmd := []byte(`AUTHENTICATE "` + mech + `" `)
	cmd = wire.AppendClientString(cmd, base64.StdEncoding.EncodeToString(msg))
	cmd = append(cmd, "\r\n"...)
	if err := bc.send(cmd); err != nil {
		return fmt.Errorf("AUTHENTICATE %s: %w", mech, err)
	}
	var cancelled *gateway.Error // the client cancelled a relayed exchange
	for range maxChallenges {
		resp, err := bc.read()
		if err != nil {
			return fmt.Errorf("AUTHENTICATE %s: %w", mech, err)
		}
		if cancelled != nil && resp.Type != "" {
			return cancelled // the backend's answer to "*" does not count
		}
		switch resp.Type {
		case "OK":
			bc.ok = resp
			return nil
		case "NO":
			e := &gateway.Error{Code: gateway.CodeAuthFailed, Text: resp.Text, Detail: resp.Code}
			if resp.Code == "TRYLATER" {
				e.Code = gateway.CodeUnavailable
			}
			return e
		case "BYE":
			return fmt.Errorf("AUTHENTICATE %s: BYE %s", mech, wire.SafeText(resp.Text))
		}
		challenge, ok := resp.Challenge()
		if !ok {
			return fmt.Errorf("AUTHENTICATE %s: unexpected data line", mech)
		}
		answer := "*"
		if relay {
			v, err := bc.c.relayChallenge(challenge)
			if err != nil {
				return err
			}
			answer, cancelled = gateway.RelayAnswer(v)
		}
		if err := bc.send(append(wire.AppendClientString(nil, answer), "\r\n"...)); err != nil {
			return fmt.Errorf("AUTHENTICATE %s: %w", mech, err)
		}
	}
	return fmt.Errorf("AUTHENTICATE %s: too many challenges", mech)
}

// relayChallenge passes a backend's SASL challenge to the client and
// returns the client's answer string. A client that cannot answer ends
// the session.
func (c *conn) relayChallenge(challenge string) (string, error) {
	c.write(append(wire.AppendString(nil, challenge), "\r\n"...))
	if err := c.flush(); err != nil {
		c.s.End("client write: " + err.Error())
		return "", err
	}
	v, err := c.rd.ReadString()
	if err != nil {
		c.readFailed(err) // a wire error is answered; fatal ones, timeouts and EOF end the session
		c.s.End("client answer to a relayed SASL challenge: " + err.Error())
		return "", err
	}
	return v.Str, nil
}
