package pop3_test

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
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/route"
)

// A proxy in front of one POP3 backend, reached by a client that logs in
// with USER and PASS and then talks to the backend.
func ExampleServer() {
	backend := exampleBackend()
	defer backend.Close()

	// The proxy: every account goes to that backend, which is not told the
	// client's address (client_addr=none; Dovecot takes XCLIENT, the default).
	be, err := route.ParseBackend("pop3://" + backend.Addr().String() + "?client_addr=none")
	if err != nil {
		log.Fatal(err)
	}
	srv := &pop3.Server{Server: gateway.Server{
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{be}}, nil
		}),
		AllowPlaintextAuth: true, // loopback only; use TLSConfig (STLS, port 995) in production
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l, false)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	say := func(cmd string) {
		if cmd != "" {
			io.WriteString(c, cmd+"\r\n")
		}
		line, _ := br.ReadString('\n')
		fmt.Println(strings.TrimRight(line, "\r\n"))
	}
	say("") // the greeting
	say("USER alice@a.test")
	say("PASS secret")
	say("STAT") // answered by the backend, through the pipe
	say("QUIT")
	// Output:
	// +OK pipegate POP3 proxy ready.
	// +OK Send the password
	// +OK Logged in.
	// +OK 1 42
	// +OK Bye
}

// exampleBackend is a POP3 server holding alice with one message.
func exampleBackend() net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go acceptExample(l)
	return l
}

func acceptExample(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go serveExample(c)
	}
}

func serveExample(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "+OK backend ready\r\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch f := strings.Fields(line); {
		case len(f) == 0:
			io.WriteString(c, "-ERR empty\r\n")
		case f[0] == "USER":
			io.WriteString(c, "+OK\r\n")
		case f[0] == "PASS" && len(f) == 2 && f[1] == "secret":
			io.WriteString(c, "+OK Logged in.\r\n")
		case f[0] == "STAT":
			io.WriteString(c, "+OK 1 42\r\n")
		case f[0] == "QUIT":
			io.WriteString(c, "+OK Bye\r\n")
			return
		default:
			io.WriteString(c, "-ERR not here\r\n")
		}
	}
}
