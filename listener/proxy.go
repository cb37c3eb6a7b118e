package listener

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"github.com/pipegate/pipegate/pipe"
)

// DefaultHeaderTimeout is how long Handshake waits for a PROXY header when
// ProxyPolicy.HeaderTimeout is zero.
const DefaultHeaderTimeout = 5 * time.Second

// headerBufSize is the read buffer for the header: larger than a v1 header
// (107 bytes) and a v2 header without TLVs; bytes read past the header are
// handed back with the connection.
const headerBufSize = 512

// ProxyPolicy says whose PROXY protocol headers to believe. A nil or zero
// policy trusts nobody: Handshake then returns every connection unchanged.
type ProxyPolicy struct {
	// Trusted peers (load balancers) whose headers are read.
	Trusted []netip.Prefix
	// TrustUnix trusts peers on Unix domain sockets as well.
	TrustUnix bool
	// HeaderTimeout bounds the wait for the header; 0: DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// Required makes a trusted peer's connection fail without a header.
	// When false, a trusted peer may also connect directly; for protocols
	// where the server speaks first (IMAP), such a connection then waits
	// HeaderTimeout before it is served, so set Required when every
	// trusted peer sends headers.
	Required bool
}

// Handshake reads the PROXY header of c when c's peer is trusted, and
// returns the connection to continue with and the client and local
// addresses to believe.
//
//   - Untrusted peer: c unchanged and its real addresses.
//   - Trusted peer with a v1 or v2 header: the addresses from the header,
//     and c, or pipe.WithPrefix(c, leftover) when bytes past the header
//     were read (never another wrapper, so that the pipe core can unwrap
//     to the raw *net.TCPConn).
//   - A v2 LOCAL header (a health check by the load balancer): the real
//     addresses.
//   - Trusted peer, no header, Required false: real addresses.
//   - A malformed header, a timeout with Required, or a header with other
//     than TCP/IPv4 or TCP/IPv6 addresses: an error naming the peer. The
//     caller closes c.
//
// A v1 header split over several TCP segments is rejected (go-proxyproto
// reads it in one go, as the specification asks senders to send it).
// c's read deadline is cleared before Handshake returns.
func (p *ProxyPolicy) Handshake(c net.Conn) (conn net.Conn, client netip.AddrPort, local netip.AddrPort, err error) {
	conn, client, local, _, err = p.handshake(c)
	return conn, client, local, err
}

// HandshakeTLS is Handshake that also reports whether the trusted proxy
// says its client reached it over TLS: a PROXY v2 header whose
// PP2_TYPE_SSL TLV has the PP2_CLIENT_SSL flag (HAProxy's
// send-proxy-v2-ssl, when it terminates TLS), as Dovecot takes it
// (haproxy_terminated_tls). Only a trusted peer's header is read.
func (p *ProxyPolicy) HandshakeTLS(c net.Conn) (conn net.Conn, client netip.AddrPort, local netip.AddrPort, clientTLS bool, err error) {
	return p.handshake(c)
}

func (p *ProxyPolicy) handshake(c net.Conn) (conn net.Conn, client netip.AddrPort, local netip.AddrPort, clientTLS bool, err error) {
	client, local = addrPort(c.RemoteAddr()), addrPort(c.LocalAddr())
	if !p.trusts(c.RemoteAddr(), client) {
		return c, client, local, false, nil
	}
	peer := c.RemoteAddr().String()
	timeout := p.HeaderTimeout
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, client, local, false, fmt.Errorf("PROXY header from %s: set deadline: %w", peer, err)
	}
	br := bufio.NewReaderSize(c, headerBufSize)
	h, rerr := proxyproto.Read(br)
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, client, local, false, fmt.Errorf("PROXY header from %s: clear deadline: %w", peer, err)
	}
	leftover := func() net.Conn {
		n := br.Buffered()
		if n == 0 {
			return c
		}
		b, _ := br.Peek(n)
		return pipe.WithPrefix(c, append([]byte(nil), b...))
	}
	var nerr net.Error
	switch {
	case rerr == nil:
	case errors.Is(rerr, proxyproto.ErrNoProxyProtocol) && !p.Required:
		return leftover(), client, local, false, nil
	case errors.As(rerr, &nerr) && nerr.Timeout():
		if !p.Required {
			return leftover(), client, local, false, nil
		}
		return nil, client, local, false, fmt.Errorf("PROXY header from trusted peer %s: none within %v", peer, timeout)
	case errors.Is(rerr, proxyproto.ErrNoProxyProtocol), errors.Is(rerr, io.EOF):
		return nil, client, local, false, fmt.Errorf("PROXY header from trusted peer %s: missing (header required): %w", peer, rerr)
	default:
		return nil, client, local, false, fmt.Errorf("PROXY header from trusted peer %s: %w", peer, rerr)
	}
	if h.Command.IsLocal() {
		return leftover(), client, local, false, nil
	}
	src, sok := h.SourceAddr.(*net.TCPAddr)
	dst, dok := h.DestinationAddr.(*net.TCPAddr)
	if !sok || !dok || src == nil || dst == nil {
		return nil, client, local, false, fmt.Errorf("PROXY header from trusted peer %s: unsupported address family %#x (want TCP over IPv4 or IPv6)", peer, byte(h.TransportProtocol))
	}
	if tlvs, err := h.TLVs(); err == nil {
		if ssl, ok := tlvparse.FindSSL(tlvs); ok {
			clientTLS = ssl.ClientSSL()
		}
	}
	return leftover(), unmap(src.AddrPort()), unmap(dst.AddrPort()), clientTLS, nil
}

func (p *ProxyPolicy) trusts(a net.Addr, ap netip.AddrPort) bool {
	if p == nil {
		return false
	}
	if _, ok := a.(*net.UnixAddr); ok {
		return p.TrustUnix
	}
	return ap.IsValid() && contains(p.Trusted, ap.Addr())
}

// addrPort converts a TCP (or UDP) address; anything else gives the zero
// AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return unmap(a.AddrPort())
	case *net.UDPAddr:
		return unmap(a.AddrPort())
	}
	return netip.AddrPort{}
}

// unmap makes an IPv4-mapped address IPv4 and drops a zone (a link-local
// client's "%eth0"): the address goes to backends, auth services, PROXY
// headers and limits, none of which take a zone (Dovecot's net_addr2ip,
// Postfix's XCLIENT, nginx's $remote_addr).
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// WriteHeader writes a PROXY protocol header, version "v1" or "v2", in one
// Write. When src or dst is not valid (a Unix socket client, say), it
// writes a header without addresses: "PROXY UNKNOWN" (v1) or LOCAL (v2),
// which tells the receiver to use the connection's own addresses.
func WriteHeader(w io.Writer, version string, src, dst netip.AddrPort) error {
	var v byte
	switch version {
	case "v1":
		v = 1
	case "v2":
		v = 2
	default:
		return fmt.Errorf("PROXY header: version %q: want v1 or v2", version)
	}
	var h *proxyproto.Header
	if src.IsValid() && dst.IsValid() {
		h = proxyproto.HeaderProxyFromAddrs(v, net.TCPAddrFromAddrPort(unmap(src)), net.TCPAddrFromAddrPort(unmap(dst)))
	} else {
		h = &proxyproto.Header{Version: v, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	}
	b, err := h.Format()
	if err != nil {
		return fmt.Errorf("PROXY header %s %v -> %v: %w", version, src, dst, err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("PROXY header %s: write: %w", version, err)
	}
	return nil
}
