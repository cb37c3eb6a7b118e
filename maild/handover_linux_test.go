package maild

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/upgradetest"
)

// TestHandOverNewProcessDies: the new process of an upgrade said it
// serves, took the first session and died before it read the others.
// The daemon takes those back and carries them on: bytes still flow
// between their client and backend sockets. The session the new process
// took died with it.
func TestHandOverNewProcessDies(t *testing.T) {
	logs := &upgradetest.EndLog{}
	d := fuzzDaemon(t, slog.New(logs))
	ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
	defer cancel()

	// Three sessions come in from an earlier process.
	in, inNew := upgradetest.Channel(t)
	state := upgradetest.DetachedState(t)
	var kept [][]*os.File // each session's client and backend peers
	for i := range 3 {
		meta, err := json.Marshal(sessionMsg{State: state, Session: gateway.SessionState{
			ID: "s" + strconv.Itoa(i), Protocol: "imap", Client: "127.0.0.1:4000" + strconv.Itoa(i), Account: "a" + strconv.Itoa(i),
		}})
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, upgradetest.SendSockets(t, ctx, in, kindSession, meta, 2))
	}
	if err := in.Send(ctx, kindSessions, []byte("3")); err != nil {
		t.Fatal(err)
	}
	if n, err := d.TakeOver(ctx, inNew); n != 3 || err != nil {
		t.Fatalf("TakeOver: %d, %v", n, err)
	}

	// They go on to a new process that dies after the first.
	out, outNew := upgradetest.Channel(t)
	if err := outNew.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := out.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	died := make(chan struct{})
	go func() {
		defer close(died)
		outNew.RecvEach(ctx, kindSession, kindSessions, func(meta []byte, files []*os.File) {
			for _, f := range files {
				f.Close()
			}
			outNew.Close()
		})
	}()
	sent, stayed, err := d.HandOver(ctx, out)
	<-died
	t.Logf("HandOver: sent %d, stayed %d, %v", sent, stayed, err)
	if err == nil || sent != 1 || stayed != 2 {
		t.Fatalf("HandOver: sent %d, stayed %d, %v; want 1, 2 and the new process's end", sent, stayed, err)
	}

	alive := 0
	for _, k := range kept {
		client, backend := k[0], k[1]
		backend.SetReadDeadline(time.Now().Add(fuzzTimeout)) // a failure detector only
		if _, err := client.Write([]byte("x")); err != nil {
			continue
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(backend, b); err == nil && b[0] == 'x' {
			alive++
		}
	}
	if alive != 2 {
		t.Fatalf("%d of 3 sessions go on, want the 2 the new process did not take", alive)
	}
}
