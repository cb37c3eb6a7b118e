package imap_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/route"
)

// A proxy in front of one backend, reached by a client that logs in.
func ExampleServer() {
	// A backend: go-imap's in-memory server holding alice.
	mem := imapmemserver.New()
	alice := imapmemserver.NewUser("alice@a.test", "secret")
	_ = alice.Create("INBOX", nil)
	mem.AddUser(alice)
	backend := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go backend.Serve(bl)
	defer backend.Close()

	// The proxy: every account of a.test goes to that backend.
	be, err := route.ParseBackend("imap://" + bl.Addr().String() + "?id=0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &imap.Server{
		Server: gateway.Server{
			Router: route.RouterFunc(func(ctx context.Context, req route.Request) (route.Route, error) {
				return route.Route{Backends: []route.Backend{be}}, nil
			}),
			AllowPlaintextAuth: true, // loopback only; use TLSConfig in production
			Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(pl, false)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	// A client logs in through the proxy and talks to the backend.
	c, err := imapclient.DialInsecure(pl.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Login("alice@a.test", "secret").Wait(); err != nil {
		log.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("INBOX messages:", sel.NumMessages)
	c.Logout().Wait()
	c.Close()
	// Output: INBOX messages: 0
}
