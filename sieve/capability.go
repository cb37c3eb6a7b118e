package sieve

import (
	"strings"

	"github.com/pipegate/pipegate/sieve/wire"
)

// caps returns the capabilities before login for the session's current
// state (RFC 5804 section 1.7): IMPLEMENTATION, SASL (empty when a login
// is not allowed on this link, as Dovecot does: RFC 5804 allows it only
// with STARTTLS offered), the configured ones (SIEVE, NOTIFY, ...),
// STARTTLS when it can be done, VERSION, and XCLIENT to a trusted proxy.
func (c *conn) caps() wire.Capabilities {
	impl := c.srv.Implementation
	if impl == "" {
		impl = DefaultImplementation
	}
	caps := wire.Capabilities{
		{Name: "IMPLEMENTATION", Value: oneLine(impl)},
		{Name: "SASL", Value: strings.Join(c.s.Mechanisms(), " ")},
	}
	extra := c.srv.Capabilities
	if extra == nil {
		extra = DefaultCapabilities
	}
	for _, e := range extra {
		switch strings.ToUpper(e.Name) {
		case "IMPLEMENTATION", "SASL", "STARTTLS", "VERSION", "":
			continue
		}
		caps = append(caps, wire.Capability{Name: strings.ToUpper(e.Name), Value: oneLine(e.Value)})
	}
	if c.s.CanStartTLS() {
		caps = append(caps, wire.Capability{Name: "STARTTLS"})
	}
	caps = append(caps, wire.Capability{Name: "VERSION", Value: "1.0"})
	if c.trusted {
		caps = append(caps, wire.Capability{Name: "XCLIENT"}) // as Dovecot tells its trusted proxies
	}
	return caps
}

// writeCaps writes the capability lines; the caller ends them with OK. An
// empty SASL list is written as "SASL" "", as Dovecot does (RFC 5804
// section 1.7 allows it when STARTTLS is offered), not as a bare "SASL",
// which clients would read as a capability without a value.
func (c *conn) writeCaps() {
	var b []byte
	for _, cp := range c.caps() {
		if cp.Name == "SASL" && cp.Value == "" {
			b = append(b, "\"SASL\" \"\"\r\n"...)
			continue
		}
		b = wire.Capabilities{cp}.Append(b)
	}
	c.write(b)
}

func (c *conn) cmdCapability(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		c.reply("NO", "", "CAPABILITY takes no arguments")
		return
	}
	c.writeCaps()
	c.reply("OK", "", "Capability completed.")
}

// oneLine replaces CR, LF and NUL by spaces, so that a configured value
// stays a quoted string on one line (wire.SafeText would also cut a long
// SIEVE list).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}
