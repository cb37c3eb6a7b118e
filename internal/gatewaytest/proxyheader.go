package gatewaytest

import (
	"bufio"
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"
)

// ProxiedBackend is a ScriptedBackend for a route with proxy=v1 or v2:
// it reads the PROXY header the gateway sends first and sends its
// destination (IPv4-mapped addresses as IPv4) to dst, then runs script.
// A header that does not parse sends the zero address and ends the
// connection.
func ProxiedBackend(t testing.TB, got chan<- string, dst chan<- netip.AddrPort, script func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	return ScriptedBackend(t, got, func(c net.Conn, br *bufio.Reader) {
		h, err := proxyproto.Read(br)
		var to *net.TCPAddr
		if err == nil {
			to, _ = h.DestinationAddr.(*net.TCPAddr)
		}
		if to == nil {
			dst <- netip.AddrPort{}
			_ = c.Close()
			return
		}
		ap := to.AddrPort()
		dst <- netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		script(c, br)
	})
}
