package imap

import (
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/internal/xclient"
)

// trustedIDFields are the ID fields a trusted proxy in front says its
// client with, by the XCLIENT attribute each stands for.
var trustedIDFields = map[string]string{
	"x-originating-ip":   "ADDR",
	"x-originating-port": "PORT",
	"x-connected-ip":     "DESTADDR",
	"x-connected-port":   "DESTPORT",
	"x-session-ext-id":   "SESSION",
	"x-session-id":       "SESSION",
}

// idField is one field of an ID list; a nil value is NIL.
type idField struct {
	key   string
	value *string
}

// Limits of RFC 2971 section 3.3.
const (
	maxIDFields   = 30
	maxIDKey      = 30
	maxIDValue    = 1024
	idProductName = "pipegate"
)

// cmdID answers with our identity and remembers the client's fields, to
// pass them on to backends after ours. Fields whose names start with "x-"
// are dropped: a client must not set x-originating-ip and the like, which
// backends trust from the proxy. Its x-proxy-ttl is kept aside: it can
// only lower ours (see gateway.DefaultProxyTTL). From a trusted proxy in
// front (Server.TrustedNetworks), x-originating-ip, x-originating-port
// and x-session-ext-id (or x-session-id) say who its client is, and
// x-connected-ip and x-connected-port where that client connected to
// (without a port, the connection's stays), as Dovecot's imap-login takes
// them; a value that does not parse is ignored, as there.
func (c *conn) cmdID(cmd *wire.Command) {
	if len(cmd.Args) != 1 {
		c.tagged(cmd.Tag, "BAD", "", "ID takes one argument: NIL or a list of fields")
		return
	}
	arg := cmd.Args[0]
	var fields []idField
	ttl := 0
	var front xclient.Parser // what a trusted proxy says of its client
	switch {
	case arg.IsNIL():
	case arg.Kind == wire.KindList:
		if len(arg.List)%2 != 0 {
			c.tagged(cmd.Tag, "BAD", "", "ID list must hold field-value pairs")
			return
		}
		if len(arg.List) > 2*maxIDFields {
			c.tagged(cmd.Tag, "BAD", "", "ID list has more than 30 fields")
			return
		}
		for i := 0; i < len(arg.List); i += 2 {
			k, v := arg.List[i], arg.List[i+1]
			if strings.IndexByte(k.Str, 0) >= 0 || strings.IndexByte(v.Str, 0) >= 0 {
				// Literal data is CHAR8, %x01-ff (RFC 9051): never passed on.
				c.tagged(cmd.Tag, "BAD", "", "ID fields must not hold NUL")
				return
			}
			if !k.IsString() || len(k.Str) > maxIDKey {
				c.tagged(cmd.Tag, "BAD", "", "ID field names must be strings of at most 30 bytes")
				return
			}
			var val *string
			switch {
			case v.IsNIL():
			case v.IsString() && len(v.Str) <= maxIDValue:
				s := v.Str
				val = &s
			default:
				c.tagged(cmd.Tag, "BAD", "", "ID values must be NIL or strings of at most 1024 bytes")
				return
			}
			key := strings.ToLower(k.Str)
			if key == "x-proxy-ttl" && val != nil {
				// Values that do not parse, or 0, leave the default.
				if n, err := strconv.Atoi(*val); err == nil && n > 0 {
					ttl = n
				}
			}
			if c.trusted && val != nil {
				if name := trustedIDFields[key]; name != "" && front.Set(name, *val) != nil {
					c.s.Logger().Info("imap: ID from a trusted proxy: value ignored", "field", key, "value", (*val)[:min(len(*val), 64)])
				}
			}
			if strings.HasPrefix(key, "x-") {
				continue
			}
			fields = append(fields, idField{key: k.Str, value: val})
		}
	default:
		c.tagged(cmd.Tag, "BAD", "", "ID takes NIL or a parenthesized list")
		return
	}
	c.clientID = fields
	c.s.SetProxyTTL(ttl)
	if x := front.Attrs(); x.Addr.Addr().IsValid() || x.Local.Addr().IsValid() {
		x.ApplyLogged(c.s, "imap: ID from a trusted proxy")
	}
	c.writef("* ID (\"name\" \"%s\")\r\n", idProductName)
	c.tagged(cmd.Tag, "OK", "", "ID completed")
}
