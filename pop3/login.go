package pop3

import (
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/pop3/wire"
	"github.com/pipegate/pipegate/route"
)

// cmdUser handles USER name (RFC 1939 section 7). The name is the rest of
// the line, as Dovecot takes it; the account rules then decide whether it
// is acceptable.
func (c *conn) cmdUser(cmd *wire.Command) {
	if !c.s.AuthAllowed() {
		c.fail(errPrivacyRequired)
		return
	}
	if cmd.Rest == "" {
		c.err("", "Usage: USER name")
		return
	}
	c.user, c.haveUser = cmd.Rest, true
	c.ok("Send the password")
}

// cmdPass handles PASS password: the rest of the line, spaces included.
func (c *conn) cmdPass(cmd *wire.Command) {
	started := time.Now()
	if !c.s.AuthAllowed() {
		c.fail(errPrivacyRequired)
		return
	}
	if !c.haveUser {
		c.err("", "No user name given, send USER first")
		return
	}
	user := c.user
	c.user, c.haveUser = "", false
	c.login(sasl.Credentials{Authcid: user, Password: cmd.Rest}, "login", started)
}

// login logs in through the gateway (account rules, route, failover, the
// failure path), speaking POP3 to the backends by backendConn; on success
// it relays the backend's +OK and hands both connections to the pipe.
func (c *conn) login(creds sasl.Credentials, method string, started time.Time) {
	var bc *backendConn
	b, err := c.s.Login(creds, method, started, func(b *gateway.Backend, lg gateway.Login, rt route.Route) error {
		bc = &backendConn{Backend: b, c: c}
		return bc.loginAll(lg, rt)
	})
	if err != nil {
		c.fail(err)
		return
	}
	ok := &wire.Response{Status: wire.StatusOK, Code: bc.ok.Code, Text: wire.SafeText(bc.ok.Text)}
	if ok.Text == "" {
		ok.Text = "Logged in"
	}
	c.respond(ok)
	if err := c.flush(); err != nil {
		b.Close()
		c.s.End("client write: " + err.Error())
		return
	}
	c.s.Handover(b)
}
