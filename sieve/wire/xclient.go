package wire

import "github.com/pipegate/pipegate/internal/xclient"

// MaxSessionID is the longest SESSION value XCLIENT keeps; a longer one
// is ignored, as Dovecot does (LOGIN_MAX_SESSION_ID_LEN).
const MaxSessionID = xclient.MaxSessionID

// XClient is what a trusted proxy in front says with XCLIENT: Dovecot's
// ManageSieve extension (Pigeonhole's managesieve-login cmd_xclient),
// which Dovecot's and pipegate's ManageSieve proxies send to a backend
// whose capabilities list "XCLIENT". There is no RFC; its form is
// Pigeonhole's: XCLIENT then atoms NAME=value, names in any case.
type XClient = xclient.Attrs

// ParseXClient parses XCLIENT's arguments. Each must be an atom; ADDR,
// DESTADDR (an IPv4 or IPv6 address), PORT, DESTPORT (1 to 65535) and
// TTL (an unsigned 32-bit decimal number) must be valid when given: else
// a non-fatal *Error says which is not, and nothing is to be applied.
// Other atoms (CLIENT-TRANSPORT, DESTNAME, FORWARD, unknown names) are
// ignored; DESTADDR and DESTPORT, where the proxy's client connected,
// come back as XClient.Local.
func ParseXClient(args []Value) (XClient, error) {
	// Arguments are checked in order: a bad attribute before the first
	// argument that is not an atom is the error to report.
	atoms := make([]string, 0, len(args))
	for _, a := range args {
		if a.Kind != KindAtom {
			break
		}
		atoms = append(atoms, a.Str)
	}
	x, err := xclient.ParseDovecot(atoms)
	if err != nil {
		return XClient{}, refuse("%v", err)
	}
	if i := len(atoms); i < len(args) {
		return XClient{}, refuse("XCLIENT: argument %d is a %s, want an atom NAME=value", i+1, args[i].Kind)
	}
	return x, nil
}
