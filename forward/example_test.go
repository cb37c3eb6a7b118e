package forward_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pipegate/pipegate/forward"
)

// A forward from a loopback port to an upstream that says hello.
func ExampleServer() {
	up, _ := net.Listen("tcp", "127.0.0.1:0")
	defer up.Close()
	go sayHello(up)

	srv, err := forward.New(forward.Config{
		Name:        "example",
		Listen:      "127.0.0.1:0",
		Upstreams:   []string{up.Addr().String()},
		DialTimeout: 2 * time.Second,
	}, forward.Deps{}) // no logs, no metrics
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := forward.Listen(srv.Config().Listen)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c, _ := net.Dial("tcp", ln.Addr().String())
	b, _ := io.ReadAll(c)
	c.Close()
	fmt.Printf("%s\n", b)

	srv.Shutdown(context.Background())
	fmt.Println(<-served)
	// Output:
	// hello through the forward
	// forward: server closed
}

func sayHello(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	io.WriteString(c, "hello through the forward")
	c.Close()
}

// Routing by TLS server name without terminating TLS: peek, decide, and
// replay the peeked bytes to the chosen upstream.
func ExamplePeekClientHello() {
	// The first bytes of a TLS 1.2+ ClientHello for "mail.example" (as any
	// TLS client sends them), trimmed to what the parser needs.
	hello := []byte{
		0x16, 0x03, 0x01, 0x00, 0x38, // record: handshake, 56 bytes
		0x01, 0x00, 0x00, 0x34, // ClientHello, 52 bytes
		0x03, 0x03, // legacy version
	}
	hello = append(hello, make([]byte, 32)...) // random
	hello = append(hello, 0x00)                // no session id
	hello = append(hello, 0x00, 0x00)          // no cipher suites
	hello = append(hello, 0x00)                // no compression methods
	hello = append(hello, 0x00, 0x00)          // extensions: patched below
	sni := []byte{0x00, 0x00, 0x00, 0x11, 0x00, 0x0f, 0x00, 0x00, 0x0c}
	sni = append(sni, "mail.example"...)
	hello = append(hello, sni...)
	hello[len(hello)-len(sni)-1] = byte(len(sni))
	hello[4] = byte(len(hello) - 5)
	hello[8] = byte(len(hello) - 9)

	name, peeked, err := forward.PeekClientHello(bytes.NewReader(hello))
	fmt.Println(name, len(peeked) == len(hello), err)
	// Output: mail.example true <nil>
}

// A Set runs the forwards of a config file and follows its changes.
func ExampleSet() {
	set := forward.NewSet(forward.Deps{}) // no logs, no metrics
	cfgs := []forward.Config{
		{Name: "web", Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:8080"}},
		{Name: "db", Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:5432"}, GoAccept: true},
	}
	drain := forward.Drain{Timeout: 30 * time.Second, Spread: 10 * time.Second}
	if err := set.Apply(cfgs, drain); err != nil {
		fmt.Println(err)
		return
	}
	// SIGHUP: web keeps its listener and reloads in place; db drains.
	if err := set.Apply(cfgs[:1], drain); err != nil {
		fmt.Println(err)
	}
	for _, l := range set.Listening() {
		fmt.Println(l.Name)
	}
	set.Shutdown(context.Background())
	// Output: web
}
