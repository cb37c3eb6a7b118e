package evloop

import (
	"net"
	"testing"
)

// TestLocalAddr: LocalAddr reads an accepted socket's own address, IPv4
// and IPv6, as Go's net package sees it.
func TestLocalAddr(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v (no such loopback here)", addr, err)
			continue
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			ln.Close()
			t.Fatal(err)
		}
		s, err := ln.Accept()
		ln.Close()
		if err != nil {
			c.Close()
			t.Fatal(err)
		}
		rc, _ := s.(*net.TCPConn).SyscallConn()
		var got string
		var lerr error
		rc.Control(func(fd uintptr) {
			ap, err := LocalAddr(int(fd))
			got, lerr = ap.String(), err
		})
		if lerr != nil || got != s.LocalAddr().String() {
			t.Errorf("LocalAddr = %s, %v; want %s", got, lerr, s.LocalAddr())
		}
		c.Close()
		s.Close()
	}
	if _, err := LocalAddr(-1); err == nil {
		t.Error("LocalAddr(-1): no error")
	}
}
