package sieve_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/sieve"
	"github.com/pipegate/pipegate/sieve/wire"
)

// A ManageSieve client logs in through the proxy and then talks to its
// backend, which answers CAPABILITY itself after login.
func Example() {
	backend, err := newFakeBackend() // a ManageSieve server (Dovecot in real life)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	be, err := route.ParseBackend("sieve://" + backend.Addr()) // XCLIENT passes the client's address
	if err != nil {
		log.Fatal(err)
	}
	srv := &sieve.Server{
		Server: gateway.Server{
			Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
				return route.Route{Backends: []route.Backend{be}}, nil
			}),
			AllowPlaintextAuth: true, // loopback only; otherwise set TLSConfig for STARTTLS
			FailureDelay:       -1,
			Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
		Capabilities: wire.Capabilities{{Name: "SIEVE", Value: "fileinto"}},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l, false) }()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	br := bufio.NewReader(c)
	// say sends a command and prints the response up to its OK or NO.
	say := func(cmd string) {
		if cmd != "" {
			io.WriteString(c, cmd+"\r\n")
		}
		for {
			l, err := br.ReadString('\n')
			fmt.Println(strings.TrimRight(l, "\r\n"))
			if err != nil || strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") {
				return
			}
		}
	}
	say("")                                                    // the capability greeting
	say(`AUTHENTICATE "PLAIN" "AGFsaWNlQGEudGVzdAB3cm9uZw=="`) // \0alice@a.test\0wrong
	say(`AUTHENTICATE "PLAIN" "AGFsaWNlQGEudGVzdABzZWNyZXQ="`) // \0alice@a.test\0secret
	say("CAPABILITY")                                          // the backend's
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	fmt.Println(<-served == sieve.ErrServerClosed)
	// Output:
	// "IMPLEMENTATION" "pipegate"
	// "SASL" "PLAIN LOGIN"
	// "SIEVE" "fileinto"
	// "VERSION" "1.0"
	// OK "pipegate ManageSieve proxy ready"
	// NO "Authentication failed."
	// OK "Logged in."
	// "IMPLEMENTATION" "fake"
	// "SIEVE" "fileinto"
	// "VERSION" "1.0"
	// OK "Capability completed."
	// true
}
