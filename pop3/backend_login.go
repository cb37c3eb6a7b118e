package pop3

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/pop3/wire"
	"github.com/pipegate/pipegate/route"
)

// maxChallenges bounds the SASL challenges of one backend login.
const maxChallenges = 16

// login logs in to the backend as lg.Account and returns the backend's
// answer (+OK or -ERR). An error means the backend failed (I/O, protocol),
// not that the login was refused.
//
// Password logins use AUTH PLAIN with an initial response when the
// backend's CAPA lists SASL PLAIN (one command, one answer), else USER and
// PASS; a master-user login always uses AUTH PLAIN, which alone carries an
// authorization identity. A backend whose CAPA on a plain connection
// offers STLS but neither USER nor SASL PLAIN is not sent the password: an
// error (the backend failed), not a refusal. The route may replace the
// name (rt.Login) and the password (rt.Password). XOAUTH2 and OAUTHBEARER
// messages are rebuilt around the decided name and the backend's
// challenges relayed to the client.
func (bc *backendConn) login(lg gateway.Login, rt route.Route) (*wire.Response, error) {
	plan := planLogin(lg, rt, bc.caps)
	if plan.refuse != "" {
		return &wire.Response{Status: wire.StatusErr, Code: "AUTH", Text: plan.refuse}, nil
	}
	if plan.mech != "" {
		return bc.authenticate(plan.mech, plan.msg, plan.relay)
	}
	if bc.Route.TLS == route.TLSNone && bc.caps.Has("STLS") && !bc.caps.Has("USER") {
		// TLS offered, and no USER (nor SASL PLAIN) before it: the
		// backend takes passwords only over TLS (Cyrus's allowplaintext:
		// no, its default; Dovecot's disable_plaintext_auth). The route
		// is wrong, not the password: nothing is sent, and the next
		// backend is tried.
		return nil, errors.New("the backend takes no password on a plain connection (its CAPA offers STLS, and neither USER nor SASL PLAIN): route it with pop3+starttls:// or pop3s://, or let it take plaintext logins (Cyrus: allowplaintext: yes)")
	}
	return bc.userPass(plan.user, plan.pass)
}

// loginPlan is how a login goes to a backend: AUTH mech with msg, or USER
// and PASS.
type loginPlan struct {
	mech  string // "": USER and PASS
	msg   []byte // the SASL message (initial response)
	relay bool   // the backend's challenges go to the client
	user  string
	pass  string
	// refuse, when set, is the login's refusal, sent to no backend: a
	// name or password USER and PASS cannot carry (RFC 2449: VCHAR and
	// spaces) to a backend without SASL PLAIN.
	refuse string
}

// planLogin decides the backend login of lg, for a backend with caps.
func planLogin(lg gateway.Login, rt route.Route, caps wire.Capabilities) loginPlan {
	if msg := lg.Creds.Message(cmp.Or(rt.Login, lg.Account)); msg != nil {
		return loginPlan{mech: lg.Creds.Mechanism, msg: msg, relay: true}
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
	if authz != "" || hasMechanism(caps, sasl.Plain) {
		return loginPlan{mech: sasl.Plain, msg: []byte(authz + "\x00" + user + "\x00" + pass)}
	}
	if !wire.CanCarry(user) || !wire.CanCarry(pass) {
		return loginPlan{refuse: "Invalid characters in the name or password for this server (it takes USER and PASS only)"}
	}
	return loginPlan{user: user, pass: pass}
}

// hasMechanism reports whether a CAPA lists mech under SASL.
func hasMechanism(caps wire.Capabilities, mech string) bool {
	mechs, _ := caps.Args("SASL")
	for _, m := range mechs {
		if m == mech {
			return true
		}
	}
	return false
}

// userPass logs in with USER and PASS, in one write when the backend has
// PIPELINING.
func (bc *backendConn) userPass(user, pass string) (*wire.Response, error) {
	w := bc.Writer()
	_, _ = w.WriteString("USER " + user + "\r\n")
	pipelined := bc.caps.Has("PIPELINING")
	if pipelined {
		_, _ = w.WriteString("PASS " + pass + "\r\n")
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("USER: %w", err)
	}
	resp, err := bc.read()
	if err != nil {
		return nil, fmt.Errorf("USER: %w", err)
	}
	if resp.Status == wire.StatusContinue {
		// A broken backend, not the client's failed login.
		return nil, errors.New("USER: unexpected continuation")
	}
	if resp.Status != wire.StatusOK {
		return resp, nil // a pipelined PASS is answered too, but the connection is closed
	}
	if !pipelined {
		if err := bc.send("PASS " + pass + "\r\n"); err != nil {
			return nil, fmt.Errorf("PASS: %w", err)
		}
	}
	resp, err = bc.read()
	if err != nil {
		return nil, fmt.Errorf("PASS: %w", err)
	}
	if resp.Status == wire.StatusContinue {
		return nil, errors.New("PASS: unexpected continuation")
	}
	return resp, nil
}

// authenticate runs AUTH mech with msg as the initial response: on the
// AUTH line when it fits in RFC 2449's 255 octets, else after the
// backend's first "+" (RFC 5034 section 4). With relay, further challenges
// go to the client and its answers back (XOAUTH2 sends its error that
// way); else a challenge is answered with "*" (cancel).
func (bc *backendConn) authenticate(mech string, msg []byte, relay bool) (*wire.Response, error) {
	ir := base64.StdEncoding.EncodeToString(msg)
	if ir == "" {
		ir = "="
	}
	w := bc.Writer()
	line := "AUTH " + mech + " " + ir + "\r\n"
	separate := len(line) > wire.DefaultMaxLine
	if separate {
		line = "AUTH " + mech + "\r\n"
	}
	_, _ = w.WriteString(line)
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("AUTH %s: %w", mech, err)
	}
	if separate {
		resp, err := bc.read()
		if err != nil {
			return nil, fmt.Errorf("AUTH %s: %w", mech, err)
		}
		if resp.Status == wire.StatusOK { // a broken backend, not a login
			return nil, fmt.Errorf("AUTH %s: +OK before the credentials were sent", mech)
		}
		if resp.Status != wire.StatusContinue {
			return resp, nil
		}
		if err := bc.send(ir + "\r\n"); err != nil {
			return nil, fmt.Errorf("AUTH %s: %w", mech, err)
		}
	}
	var cancelled *gateway.Error // the client cancelled a relayed exchange
	for range maxChallenges {
		resp, err := bc.read()
		if err != nil {
			return nil, fmt.Errorf("AUTH %s: %w", mech, err)
		}
		if resp.Status != wire.StatusContinue {
			if cancelled != nil {
				return nil, cancelled // the backend's answer to "*" does not count
			}
			return resp, nil
		}
		answer := "*"
		if relay {
			line, err := bc.c.relayChallenge(resp.Text)
			if err != nil {
				return nil, err
			}
			answer, cancelled = gateway.RelayAnswer(line)
		}
		if err := bc.send(answer + "\r\n"); err != nil {
			return nil, fmt.Errorf("AUTH %s: %w", mech, err)
		}
	}
	return nil, fmt.Errorf("AUTH %s: more than %d challenges", mech, maxChallenges)
}

// relayChallenge passes a backend's SASL challenge to the client and
// returns the client's answer line as sent. A client that cannot answer
// ends the session.
func (c *conn) relayChallenge(challenge string) (string, error) {
	c.respond(&wire.Response{Status: wire.StatusContinue, Text: challenge})
	if err := c.flush(); err != nil {
		c.s.End("client write: " + err.Error())
		return "", err
	}
	line, err := c.rd.ReadSASLResponse()
	if err != nil {
		c.readFailed(err) // ends the session: a line too long, a timeout, EOF
		c.s.End("client read during a relayed SASL exchange: " + err.Error())
		return "", err
	}
	return string(line), nil
}
