package listener_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/pipegate/pipegate/listener"
)

// A load balancer (here the goroutine writing on lb) sends a PROXY v2
// header before the client's bytes; Handshake gives back the client's
// address and a connection that replays what followed the header.
func ExampleProxyPolicy_Handshake() {
	trusted, err := listener.ParseCIDRs("trusted_proxies", []string{"127.0.0.1", "10.0.0.0/8"})
	if err != nil {
		panic(err)
	}
	policy := &listener.ProxyPolicy{Trusted: trusted, Required: true}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	lb, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	raw, err := ln.Accept()
	if err != nil {
		panic(err)
	}
	client := netip.MustParseAddrPort("203.0.113.5:50123")
	local := netip.MustParseAddrPort("198.51.100.1:993")
	if err := listener.WriteHeader(lb, "v2", client, local); err != nil {
		panic(err)
	}
	fmt.Fprint(lb, "hello")
	lb.Close()

	conn, from, to, err := policy.Handshake(raw)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	rest, _ := io.ReadAll(conn)
	fmt.Println(from, to, string(rest))
	// Output: 203.0.113.5:50123 198.51.100.1:993 hello
}

func ExampleParseCIDRs() {
	_, err := listener.ParseCIDRs("forwards[0].trusted_proxy", []string{"10.0.0.0/8", "10.0.0.0/40"})
	fmt.Println(err)
	// Output: forwards[0].trusted_proxy[1]: "10.0.0.0/40" is not an IP address or CIDR prefix: netip.ParsePrefix("10.0.0.0/40"): prefix length out of range
}
