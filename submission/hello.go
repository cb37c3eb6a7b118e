package submission

import (
	"strings"

	"github.com/pipegate/pipegate/submission/wire"
)

// cmdHello answers EHLO (with the extensions that matter before AUTH)
// and HELO, and keeps the client's name for the backend (XCLIENT HELO=,
// and the EHLO sent to the backend in its name).
func (c *conn) cmdHello(cmd *wire.Command, esmtp bool) {
	f := cmd.Args()
	if len(f) == 0 {
		c.reply(501, "5.5.4", "Syntax: "+cmd.Verb+" hostname")
		return
	}
	c.helo, c.esmtp = f[0], esmtp
	if !esmtp {
		c.reply(250, "", c.host)
		return
	}
	c.write(mustAppend(c.extensions().EHLOReply(c.host)))
}

// extensions are what EHLO lists now: PIPELINING (commands before AUTH
// are read one by one and answered in order, and what follows AUTH goes
// to the backend after its 235), the operator's Extensions,
// ENHANCEDSTATUSCODES, STARTTLS while it can be used, and AUTH with the
// mechanisms only when a login is allowed on this link (RFC 4954 section
// 4: a server that refuses plaintext mechanisms does not list them), and
// XCLIENT to a trusted proxy.
func (c *conn) extensions() wire.Extensions {
	exts := wire.Extensions{{Keyword: "PIPELINING"}}
	for _, e := range c.srv.Extensions {
		f := strings.Fields(e)
		if len(f) == 0 {
			continue
		}
		switch kw := strings.ToUpper(f[0]); kw {
		case "PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH", "XCLIENT", "XFORWARD":
		default:
			exts = append(exts, wire.Extension{Keyword: kw, Params: f[1:]})
		}
	}
	exts = append(exts, wire.Extension{Keyword: "ENHANCEDSTATUSCODES"})
	if c.s.CanStartTLS() {
		exts = append(exts, wire.Extension{Keyword: "STARTTLS"})
	}
	if mechs := c.s.Mechanisms(); mechs != nil {
		exts = append(exts, wire.Extension{Keyword: "AUTH", Params: mechs})
	}
	if c.trusted {
		exts = append(exts, wire.Extension{Keyword: "XCLIENT", Params: xclientOffered})
	}
	return exts
}

func mustAppend(r *wire.Reply) []byte {
	b, _ := r.Append(nil) // code 250 without enhanced code: cannot fail
	return b
}
