package imap

import (
	"strings"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/route"
)

// cmdLogin handles LOGIN user password.
func (c *conn) cmdLogin(cmd *wire.Command) {
	started := time.Now()
	if !c.s.AuthAllowed() {
		c.respond(cmd.Tag, errPrivacyRequired)
		return
	}
	args, err := cmd.AStrings(2)
	if err != nil {
		c.tagged(cmd.Tag, "BAD", "", err.(*wire.Error).Text)
		return
	}
	c.login(cmd.Tag, sasl.Credentials{Authcid: args[0], Password: args[1]}, "login", started)
}

// login logs in through the gateway (account rules, route, failover, the
// failure path), speaking IMAP to the backends by loginBackend; on success
// it tells the client it is in, with the backend's post-login
// capabilities, and hands both connections to the pipe.
func (c *conn) login(tag string, creds sasl.Credentials, method string, started time.Time) {
	var bc *backendConn
	b, err := c.s.Login(creds, method, started, func(b *gateway.Backend, lg gateway.Login, rt route.Route) error {
		bc = &backendConn{Backend: b, c: c, clientTag: tag}
		return bc.loginAll(lg, rt)
	})
	if err != nil {
		c.respond(tag, err)
		return
	}
	text := wire.SafeText(bc.ok.Text)
	if text == "" {
		text = "Logged in"
	}
	code := ""
	if caps := clientCaps(bc.caps); caps != "" {
		code = "CAPABILITY " + caps // 1*capability (RFC 9051): none, no code
	}
	c.tagged(tag, "OK", code, text)
	c.writef("%s", bc.afterOK) // the backend's own, after our OK as after its
	if err := c.flush(); err != nil {
		b.Close()
		c.s.End("client write: " + err.Error())
		return
	}
	c.s.Handover(b)
}

// maxClientCaps bounds the capabilities in the client's OK.
const maxClientCaps = 4096

// clientCaps is the backend's capabilities for the CAPABILITY code of the
// client's OK: whole atoms (a "]" would end the code early, a control
// byte has no place there), at most maxClientCaps bytes; not SafeText,
// whose 400 bytes would cut a real server's list in the middle of one.
func clientCaps(caps []string) string {
	var b strings.Builder
	for _, c := range caps {
		if !wire.IsAtom(c) || b.Len()+1+len(c) > maxClientCaps {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c)
	}
	return b.String()
}
