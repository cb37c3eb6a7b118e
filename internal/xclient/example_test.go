package xclient_test

import (
	"fmt"

	"github.com/pipegate/pipegate/internal/xclient"
)

func ExampleParseDovecot() {
	x, err := xclient.ParseDovecot([]string{"ADDR=192.0.2.1", "PORT=5555", "DESTADDR=198.51.100.10", "DESTPORT=110", "SESSION=abc", "TTL=3", "FORWARD=eA=="})
	fmt.Println(x.Addr, x.Local, x.Session, x.TTL, err)
	_, err = xclient.ParseDovecot([]string{"ADDR=192.0.2.1", "PORT=0"})
	fmt.Println(err)
	// Output:
	// 192.0.2.1:5555 198.51.100.10:110 abc 3 <nil>
	// XCLIENT PORT: not a port number (1 to 65535)
}

func ExampleParser() {
	// Postfix's form: the caller decodes xtext and sees [UNAVAILABLE].
	p := xclient.Parser{Postfix: true}
	fmt.Println(p.Set("ADDR", "IPV6:2001:db8::1"), p.Set("PORT", "25"))
	p.Unavailable("PORT")
	fmt.Println(p.Attrs().Addr)
	fmt.Println(p.Set("ADDR", "2001:db8::1"))
	// Output:
	// <nil> <nil>
	// [2001:db8::1]:0
	// not an IPv4 address or IPV6: and an IPv6 address
}
