package imap

import (
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/imap/wire"
)

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

// DefaultProxyTTL is the number of proxy hops a login may still take when
// the client did not say otherwise, as Dovecot's login proxy: pipegate
// sends the backend "x-proxy-ttl" one less than its own in the ID. A
// client (another pipegate or a Dovecot proxy in front) may lower it with
// its own "x-proxy-ttl" in ID, never raise it, so it need not be trusted.
// A login that arrives with a TTL of 1 or less is not proxied further: the
// client gets NO [UNAVAILABLE], which ends a routing loop (a route that
// points back at a proxy of the chain) after a few hops instead of
// looping until connections run out. Only backends sent ID take part.
const DefaultProxyTTL = 5

// proxyTTL is the session's hop budget: DefaultProxyTTL, or less when the
// client's ID said so.
func (ss *session) proxyTTL() int {
	if ss.ttl > 0 && ss.ttl < DefaultProxyTTL {
		return ss.ttl
	}
	return DefaultProxyTTL
}

// cmdID answers with our identity and remembers the client's fields, to
// pass them on to backends after ours. Fields whose names start with "x-"
// are dropped: a client must not set x-originating-ip and the like, which
// backends trust from the proxy. Its x-proxy-ttl is kept aside: it can
// only lower ours (see DefaultProxyTTL).
func (ss *session) cmdID(cmd *wire.Command) {
	if len(cmd.Args) != 1 {
		ss.tagged(cmd.Tag, "BAD", "", "ID takes one argument: NIL or a list of fields")
		return
	}
	arg := cmd.Args[0]
	var fields []idField
	ttl := 0
	switch {
	case arg.IsNIL():
	case arg.Kind == wire.KindList:
		if len(arg.List)%2 != 0 {
			ss.tagged(cmd.Tag, "BAD", "", "ID list must hold field-value pairs")
			return
		}
		if len(arg.List) > 2*maxIDFields {
			ss.tagged(cmd.Tag, "BAD", "", "ID list has more than 30 fields")
			return
		}
		for i := 0; i < len(arg.List); i += 2 {
			k, v := arg.List[i], arg.List[i+1]
			if !k.IsString() || len(k.Str) > maxIDKey {
				ss.tagged(cmd.Tag, "BAD", "", "ID field names must be strings of at most 30 bytes")
				return
			}
			var val *string
			switch {
			case v.IsNIL():
			case v.IsString() && len(v.Str) <= maxIDValue:
				s := v.Str
				val = &s
			default:
				ss.tagged(cmd.Tag, "BAD", "", "ID values must be NIL or strings of at most 1024 bytes")
				return
			}
			key := strings.ToLower(k.Str)
			if key == "x-proxy-ttl" && val != nil {
				// Values that do not parse, or 0, leave the default.
				if n, err := strconv.Atoi(*val); err == nil && n > 0 {
					ttl = n
				}
			}
			if strings.HasPrefix(key, "x-") {
				continue
			}
			fields = append(fields, idField{key: k.Str, value: val})
		}
	default:
		ss.tagged(cmd.Tag, "BAD", "", "ID takes NIL or a parenthesized list")
		return
	}
	ss.clientID, ss.ttl = fields, ttl
	ss.writef("* ID (\"name\" \"%s\")\r\n", idProductName)
	ss.tagged(cmd.Tag, "OK", "", "ID completed")
}
