package submission_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission"
)

// A client authenticates through the proxy; after the 235 it talks to the
// backend (here go-smtp's server), whose EHLO reply it then gets.
func Example() {
	backend := exampleBackend()
	defer backend.Close()
	be, _ := route.ParseBackend("submission://" + backend.Addr().String() + "?client_addr=none")
	srv := &submission.Server{Server: gateway.Server{
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{be}}, nil
		}),
		Hostname:           "gw.example",
		AllowPlaintextAuth: true, // loopback only; set TLSConfig for STARTTLS and port 465
		FailureDelay:       -1,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l, false)

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	br := bufio.NewReader(c)
	say := func(s string) {
		if s != "" {
			fmt.Println("C: " + s)
			io.WriteString(c, s+"\r\n")
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Println("S: " + strings.TrimRight(l, "\r\n"))
			if len(l) < 4 || l[3] != '-' {
				return
			}
		}
	}
	say("")
	say("EHLO client.example")
	say("MAIL FROM:<alice@example.org>")
	say("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00wrong")))
	say("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00secret")))
	say("EHLO client.example")
	say("QUIT")
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	// Output:
	// S: 220 gw.example ESMTP pipegate
	// C: EHLO client.example
	// S: 250-gw.example
	// S: 250-PIPELINING
	// S: 250-ENHANCEDSTATUSCODES
	// S: 250 AUTH PLAIN LOGIN
	// C: MAIL FROM:<alice@example.org>
	// S: 530 5.7.0 Authentication required
	// C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n
	// S: 535 5.7.8 Authentication credentials invalid
	// C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==
	// S: 235 2.0.0 Authentication succeeded
	// C: EHLO client.example
	// S: 250-Hello client.example
	// S: 250-PIPELINING
	// S: 250-8BITMIME
	// S: 250-ENHANCEDSTATUSCODES
	// S: 250-CHUNKING
	// S: 250-AUTH PLAIN
	// S: 250 SIZE
	// C: QUIT
	// S: 221 2.0.0 Bye
}

// exampleBackend is go-smtp's server taking alice@example.org's password.
func exampleBackend() net.Listener {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &backendSession{users: map[string]string{"alice@example.org": "secret"}}, nil
	}))
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	go serveExample(srv, tl)
	return closer{tl}
}

func serveExample(srv *smtp.Server, l net.Listener) { _ = srv.Serve(l) }

// closer closes the listener and every connection it accepted.
type closer struct{ *trackingListener }

func (c closer) Close() error {
	c.closeAll()
	return nil
}
