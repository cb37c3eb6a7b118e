package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/route"
)

// toy is a one-command line protocol: "LOGIN user pass", answered "+OK"
// or "-ERR text". Its dialogue is all a protocol writes.
type toy struct{}

func (toy) Name() string { return "toy" }

func (toy) Refuse(s *gateway.Session, e *gateway.Error) {
	s.Writer().WriteString("-ERR " + e.Text + "\r\n")
}

func (toy) Serve(s *gateway.Session) {
	s.Writer().WriteString("+OK toy ready\r\n")
	for s.Flush() == nil {
		line, err := s.Reader().ReadString('\n')
		if err != nil {
			s.End("client read: " + err.Error())
			return
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "LOGIN" {
			s.Writer().WriteString("-ERR LOGIN user pass\r\n")
			continue
		}
		b, err := s.Login(sasl.Credentials{Authcid: f[1], Password: f[2]}, "login", time.Now(), toyBackendLogin)
		var e *gateway.Error
		switch {
		case errors.As(err, &e): // the one place answers are rendered
			s.Writer().WriteString("-ERR " + strings.ReplaceAll(e.Text, "\r\n", " ") + "\r\n")
		case err != nil:
			return // gateway.ErrSessionEnded
		default:
			s.Writer().WriteString("+OK logged in\r\n")
			if s.Flush() != nil {
				b.Close()
				return
			}
			s.Handover(b)
			return
		}
	}
}

// toyBackendLogin is toy's side of a backend: greeting, then LOGIN.
func toyBackendLogin(b *gateway.Backend, lg gateway.Login, _ route.Route) error {
	if l, err := b.Reader().ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		return fmt.Errorf("greeting %q: %v", l, err)
	}
	fmt.Fprintf(b.Writer(), "LOGIN %s %s\r\n", lg.Account, lg.Password)
	if err := b.Writer().Flush(); err != nil {
		return err
	}
	l, err := b.Reader().ReadString('\n')
	switch {
	case err != nil:
		return err
	case !strings.HasPrefix(l, "+OK"):
		return &gateway.Error{Code: gateway.CodeAuthFailed, Text: strings.TrimSpace(strings.TrimPrefix(l, "-ERR"))}
	}
	return nil
}

// A protocol of four lines on the gateway: the client logs in through it
// and then talks to the backend.
func Example() {
	backend := toyBackend()
	defer backend.Close()
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone} // a route names backends of the session's protocol
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{be}}, nil
		}),
		AllowPlaintextAuth: true, // loopback only
		FailureDelay:       -1,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
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
	say := func(s string) {
		if s != "" {
			io.WriteString(c, s+"\r\n")
		}
		l, _ := br.ReadString('\n')
		fmt.Println(strings.TrimRight(l, "\r\n"))
	}
	say("")
	say("LOGIN alice@a.test wrong")
	say("LOGIN alice@a.test secret")
	say("PING")
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	fmt.Println(errors.Is(<-served, gateway.ErrServerClosed))
	// Output:
	// +OK toy ready
	// -ERR wrong password
	// +OK logged in
	// +PONG from the backend
	// true
}

// toyBackend serves toy: LOGIN with the password "secret", then PING.
func toyBackend() net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go acceptToy(l)
	return l
}

func acceptToy(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go serveToy(c)
	}
}

func serveToy(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "+OK backend\r\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch f := strings.Fields(line); {
		case len(f) == 3 && f[0] == "LOGIN" && f[2] == "secret":
			io.WriteString(c, "+OK\r\n")
		case len(f) > 0 && f[0] == "LOGIN":
			io.WriteString(c, "-ERR wrong password\r\n")
		default:
			io.WriteString(c, "+PONG from the backend\r\n")
		}
	}
}
