package main

import (
	"net"
	"strings"
)

// splitAddr turns "unix:/path" into ("unix", "/path"), else ("tcp", addr).
func splitAddr(addr string) (network, address string) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", p
	}
	return "tcp", addr
}

func dial(addr string) (net.Conn, error) {
	network, address := splitAddr(addr)
	return net.Dial(network, address)
}

func listen(addr string) (net.Listener, error) {
	network, address := splitAddr(addr)
	return net.Listen(network, address)
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
