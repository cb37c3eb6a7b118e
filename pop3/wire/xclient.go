package wire

import "github.com/pipegate/pipegate/internal/xclient"

// MaxSessionID is the longest SESSION value XCLIENT keeps; a longer one
// is ignored, as Dovecot does (LOGIN_MAX_SESSION_ID_LEN).
const MaxSessionID = xclient.MaxSessionID

// XClient is what a trusted proxy in front says with XCLIENT: Dovecot's
// POP3 extension (pop3-login's cmd_xclient), which Dovecot's and
// pipegate's POP3 proxies send to a backend that greets them with
// "[XCLIENT]". There is no RFC; its form is Dovecot's: "XCLIENT" then
// space-separated NAME=value attributes, names in any case, values
// as they are (no xtext). Attributes it does not know are ignored.
type XClient = xclient.Attrs

// ParseXClient parses the attributes of an XCLIENT command (Command.Args).
// ADDR, DESTADDR (an IPv4 or IPv6 address), PORT, DESTPORT (1 to 65535)
// and TTL (an unsigned 32-bit decimal number) must be valid when given:
// else the error says which is not, and nothing is to be applied (Dovecot
// answers "-ERR Invalid parameters"). DESTADDR and DESTPORT, where the
// proxy's client connected, come back as XClient.Local.
func ParseXClient(args []string) (XClient, error) {
	return xclient.ParseDovecot(args)
}
