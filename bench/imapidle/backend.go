package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// runBackend serves accounts user0@a.test .. user{N-1}@a.test, each with
// an empty INBOX, over plain IMAP until SIGINT or SIGTERM.
func runBackend(args []string) int {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve plain IMAP on")
	users := fs.Int("users", 9000, "accounts user0@a.test ... user{N-1}@a.test, password "+password)
	fs.Parse(args)

	mem := imapmemserver.New()
	for i := range *users {
		u := imapmemserver.NewUser(userName(i), password)
		if err := u.Create("INBOX", nil); err != nil {
			fmt.Fprintf(os.Stderr, "imapidle backend: create INBOX of %s: %v\n", userName(i), err)
			return 1
		}
		mem.AddUser(u)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imapidle backend:", err)
		return 1
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imapv2.CapSet{imapv2.CapIMAP4rev1: {}},
		InsecureAuth: true, // plain IMAP on loopback, behind the proxy under test
		// Clients and proxies that go away are the normal end of a run.
		Logger: log.New(io.Discard, "", 0),
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go closeOnDone(ctx, srv)
	fmt.Fprintf(os.Stderr, "imapidle backend: %d accounts on %s\n", *users, ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "imapidle backend:", err)
		return 1
	}
	return 0
}

// closeOnDone closes the server, and so its listener and sessions, when
// ctx ends.
func closeOnDone(ctx context.Context, srv *imapserver.Server) {
	<-ctx.Done()
	srv.Close()
}
