package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// SplitAddr turns "unix:/path" into ("unix", "/path") and "host:port" into
// ("tcp", "host:port"), checking the form but not resolving names.
func SplitAddr(addr string) (network, address string, err error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return "", "", fmt.Errorf("address %q: empty unix socket path", addr)
		}
		return "unix", path, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("address %q: want host:port or unix:/path: %w", addr, err)
	}
	if port == "" {
		return "", "", fmt.Errorf("address %q: missing port", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return "", "", fmt.Errorf("address %q: bad port %q", addr, port)
	}
	if strings.ContainsAny(host, " /") {
		return "", "", fmt.Errorf("address %q: bad host %q", addr, host)
	}
	return "tcp", addr, nil
}

// listenConfig leaves TCP keep-alive off on accepted connections (handleConn
// turns it on when Config.TCPKeepAlive asks): five fewer system calls per
// connection.
var listenConfig = net.ListenConfig{KeepAlive: -1}

// Listen opens a listener on addr ("host:port" or "unix:/path"). A stale
// Unix socket file, one that nobody accepts on, is removed first.
func Listen(addr string) (net.Listener, error) {
	network, address, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := listenConfig.Listen(context.Background(), network, address)
	if err == nil || network != "unix" || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	if c, derr := net.Dial("unix", address); derr == nil {
		c.Close()
		return nil, err // someone is listening: keep the error
	}
	if fi, serr := os.Lstat(address); serr != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, err // not a socket: never remove it
	}
	if rerr := os.Remove(address); rerr != nil {
		return nil, fmt.Errorf("listen %s: remove stale socket: %w", addr, rerr)
	}
	return listenConfig.Listen(context.Background(), network, address)
}

// keepAlive sets TCP keep-alive on c as Config.TCPKeepAlive says.
func keepAlive(c net.Conn, d time.Duration) {
	if tc, ok := c.(*net.TCPConn); ok && d > 0 {
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: d, Interval: d, Count: 3})
	}
}

// addrPort returns the IP address and port of a, or the zero AddrPort for
// Unix sockets and other non-IP addresses.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case nil:
		return ap
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	if !ap.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
