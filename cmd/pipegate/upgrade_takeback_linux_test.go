package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/forward"
	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/upgrade"
)

// TestUpgradeForwardNewProcessDies: the new process said it serves, took
// the first pair of the hand-over and died before it read the others.
// The old process gets those back and carries them on: their clients
// still talk to their upstreams, and each is logged once when it closes.
// The pair the new process took died with it.
func TestUpgradeForwardNewProcessDies(t *testing.T) {
	up := fwdUpstream(t, nil, testserver.Echo)
	o, err := fwdParseArgs([]string{"--listen", "127.0.0.1:0", "--to", up}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fwdLoad(o, forward.TLSCache{})
	if err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	d, err := forward.NewDaemon(cfg, slog.New(slog.NewJSONHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	d.Listen = func(a string) (net.Listener, error) {
		ln, err := forward.Listen(a)
		if err == nil {
			addrc <- ln.Addr().String()
		}
		return ln, err
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go runForwardDaemon(ctx, d, done)
	defer func() {
		if stop != nil {
			stop()
			<-done
		}
	}()
	addr := <-addrc
	var clients []net.Conn
	for range 3 {
		c := fwdDial(t, addr)
		echoOn(t, c, "hello")
		clients = append(clients, c)
	}

	srv, err := upgrade.Listen(filepath.Join(t.TempDir(), "run", "u.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	uctx, cancel := context.WithTimeout(context.Background(), fwdWait)
	defer cancel()
	newDone := make(chan error, 1)
	go func() { newDone <- dieAfterFirstPair(uctx, srv.Path()) }()
	oldSide, err := srv.Accept(uctx)
	if err != nil {
		t.Fatal(err)
	}
	defer oldSide.Close()
	if err := oldSide.WaitReady(uctx); err != nil {
		t.Fatal(err)
	}
	herr := fwdHandover{d: d, setupTimeout: fwdWait}.HandOver(uctx, oldSide)
	if herr == nil {
		t.Error("HandOverConn: no error, want the new process's end")
	}
	t.Logf("HandOverConn: %v", herr)
	if !strings.Contains(logBuf.String(), `"adopted_again":`) {
		t.Logf("no pair taken back by the Outbox in this run (the new process died before a second one was sent whole)")
	}
	if err := <-newDone; err != nil {
		t.Fatal(err)
	}

	alive := 0
	for _, c := range clients {
		c.SetDeadline(time.Now().Add(fwdWait)) // a failure detector only
		if _, err := io.WriteString(c, "still there?"); err == nil {
			b := make([]byte, len("still there?"))
			if _, err := io.ReadFull(c, b); err == nil && string(b) == "still there?" {
				alive++
			}
		}
		c.Close()
	}
	if alive != 2 {
		t.Fatalf("%d of 3 clients go on after the hand-over, want the 2 the new process did not take", alive)
	}
	stop()
	<-done
	stop = nil
	if n := strings.Count(logBuf.String(), `"msg":"connection closed"`); n != 2 {
		t.Fatalf("the old process logged %d pairs closing, want the 2 it took back:\n%s", n, logBuf.String())
	}
}

// dieAfterFirstPair is a new process that says it serves, takes the
// first pair of the hand-over and dies (its copies of the sockets close).
func dieAfterFirstPair(ctx context.Context, path string) error {
	c, err := upgrade.Dial(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Ready(ctx); err != nil {
		return err
	}
	c.RecvEach(ctx, "forward-pair", "forward-pairs", func(meta []byte, files []*os.File) {
		upgrade.CloseFiles(files)
		c.Close()
	})
	return nil
}
