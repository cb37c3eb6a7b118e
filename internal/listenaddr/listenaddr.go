package listenaddr

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// Check checks an address to listen on over TCP: HOST:PORT, the port a
// number from 0 to 65535, the host an IP address, localhost or empty (for
// every address). A host name other than localhost is refused: it would
// be resolved at start, and listened on wherever it then points. The
// error quotes addr and says what is wrong; the caller names the field or
// flag.
func Check(addr string) error {
	if strings.HasPrefix(addr, "unix:") {
		return fmt.Errorf("%q: want HOST:PORT; Unix sockets are not served here", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if i := strings.LastIndexByte(addr, ':'); i > 0 && !strings.HasPrefix(addr, "[") {
			if ip, perr := netip.ParseAddr(addr[:i]); perr == nil && ip.Is6() {
				return fmt.Errorf("%q: an IPv6 address goes in brackets: %q", addr, "["+addr[:i]+"]"+addr[i:])
			}
		}
		return fmt.Errorf("%q: want HOST:PORT (%v)", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if _, perr := netip.ParseAddr(host); host != "" && perr != nil && host != "localhost" { // a zone (fe80::1%eth0) is taken, as net.Listen does
		return fmt.Errorf("%q: host must be an IP address (or empty for all)", addr)
	}
	return nil
}

// Conflict reports whether listening on a and on b at once would fail
// with "address already in use". Both are "HOST:PORT" or "unix:/path".
//
// Two TCP addresses conflict when their ports are equal (a service name
// taken as its number) and not 0 (each listener then gets a port of its
// own), and either host is every address ("", 0.0.0.0, ::; Go listens on
// both families for either) or both are the same IP address, an
// IPv4-mapped IPv6 one taken as its IPv4; host names that are not IP
// addresses are compared as text, without resolving them. Two Unix
// sockets conflict when their cleaned paths are equal. A TCP address and
// a Unix socket never do; text that is neither conflicts only with the
// same text.
func Conflict(a, b string) bool {
	pa, unixA := strings.CutPrefix(a, "unix:")
	pb, unixB := strings.CutPrefix(b, "unix:")
	if unixA || unixB {
		return unixA && unixB && pa != "" && pb != "" && filepath.Clean(pa) == filepath.Clean(pb)
	}
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return a == b
	}
	nA, okA := portNumber(portA)
	nB, okB := portNumber(portB)
	if !okA || !okB {
		return a == b
	}
	return nA == nB && nA != 0 && sameHost(hostA, hostB)
}

// ConflictError is the problem of later, an address that Conflicts with
// earlier, given before at earlierField:
// "\":11143\": listen[0].addr (\"0.0.0.0:11143\") listens there too".
func ConflictError(later, earlierField, earlier string) error {
	return fmt.Errorf("%q: %s (%q) listens there too", later, earlierField, earlier)
}

// portNumber is port as a number, a service name ("imap") looked up as
// net.Listen does; false when it is neither.
func portNumber(port string) (int, bool) {
	if n, err := strconv.Atoi(port); err == nil {
		return n, n >= 0 && n <= 65535
	}
	n, err := net.LookupPort("tcp", port)
	return n, err == nil
}

// sameHost reports whether listening on a and on b (on one port)
// overlaps: either is every address, or they are the same.
func sameHost(a, b string) bool {
	ipA, errA := netip.ParseAddr(a)
	ipB, errB := netip.ParseAddr(b)
	everyA := a == "" || (errA == nil && ipA.Unmap().IsUnspecified())
	everyB := b == "" || (errB == nil && ipB.Unmap().IsUnspecified())
	switch {
	case everyA || everyB:
		return true
	case errA == nil && errB == nil:
		return ipA.Unmap() == ipB.Unmap()
	case errA != nil && errB != nil:
		return strings.EqualFold(a, b)
	}
	return false // an IP address and a name: not resolved
}
