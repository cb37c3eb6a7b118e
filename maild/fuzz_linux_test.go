package maild

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/upgradetest"
	"github.com/pipegate/pipegate/pipe"
)

// A handed-over session's record (sessionMsg, the meta of a kindSession
// message) comes from the old process of a binary upgrade; the new one
// decodes it in TakeOver. Fuzzed here: the record's JSON alone, and
// TakeOver reading records and descriptors from a real upgrade channel.

const (
	// fuzzMetaMax bounds the metadata the fuzzers send: within a
	// socket's buffer, so that a Send never waits for the reader.
	fuzzMetaMax = 64 << 10
	fuzzTimeout = 10 * time.Second
)

// fuzzSessionSeeds are records as HandOver encodes them, with a pipe's
// real State.
func fuzzSessionSeeds(tb testing.TB) [][]byte {
	state := upgradetest.DetachedState(tb)
	sessions := []gateway.SessionState{
		{ID: "s1", Protocol: "imap", Client: "127.0.0.1:40000", Account: "alice@a.test", Backend: "127.0.0.1:14301"},
		{ID: "s2", Protocol: "imap", Client: "[::1]:40001", Account: "bob@b.test", Backend: "imaps://127.0.0.1:19932",
			ClientTLS: true, BackendTLS: true, Pool: "members", PoolUser: "bob@b.test"},
		{ID: "s3", Protocol: "pop3", Client: "127.0.0.1:40002", Account: "carol", Backend: "127.0.0.1:110"},
	}
	var seeds [][]byte
	for _, st := range sessions {
		meta, err := json.Marshal(sessionMsg{Session: st, State: state})
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, meta)
	}
	return append(seeds, []byte(`null`), []byte(`{}`), []byte(`{"session":{"protocol":"imap"},"state":"UEdEUw=="}`))
}

// FuzzSessionMsg: a record the new process decodes is one the old
// process could have sent: it encodes again, and that decodes to the
// same record (the encoding is a fixed point).
func FuzzSessionMsg(f *testing.F) {
	for _, s := range fuzzSessionSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"SESSION":{"Id":"a","id":"b","client_tls":true},"state":"A\nA=="}`))
	f.Add([]byte(`{"session":{"account":"\ud800\u00e9"},"state":null}`))
	f.Fuzz(func(t *testing.T, meta []byte) {
		var m sessionMsg
		if err := json.Unmarshal(meta, &m); err != nil {
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("a record decoded as %+v does not encode: %v", m, err)
		}
		var m2 sessionMsg
		if err := json.Unmarshal(again, &m2); err != nil {
			t.Fatalf("record re-encoded as %s does not decode: %v", again, err)
		}
		if m.Session != m2.Session || !bytes.Equal(m.State, m2.State) {
			t.Fatalf("record %+v re-encodes as %s, which decodes as %+v", m, again, m2)
		}
	})
}

// FuzzSessionMsgRoundTrip: a record HandOver encodes decodes to the
// same one. Strings go as UTF-8: an invalid byte arrives as U+FFFD (the
// gateway's account names are UTF-8 already: gateway.AccountRules).
func FuzzSessionMsgRoundTrip(f *testing.F) {
	f.Add("s1", "imap", "127.0.0.1:40000", "alice@a.test", "127.0.0.1:14301", false, true, "", "", upgradetest.DetachedState(f))
	f.Add("s2", "pop3", "[::1]:1", "bob", "b", true, false, "members", "bob", []byte{})
	f.Add("\xff", "", "", "\xc3(", "\x00", true, true, "\u2028", "<&>", []byte(nil))
	f.Fuzz(func(t *testing.T, id, protocol, client, account, backend string, clientTLS, backendTLS bool,
		pool, poolUser string, state []byte) {
		st := gateway.SessionState{
			ID: id, Protocol: protocol, Client: client, Account: account, Backend: backend,
			ClientTLS: clientTLS, BackendTLS: backendTLS, Pool: pool, PoolUser: poolUser,
		}
		m := sessionMsg{Session: st, State: state}
		meta, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("record %+v does not encode: %v", m, err)
		}
		var got sessionMsg
		if err := json.Unmarshal(meta, &got); err != nil {
			t.Fatalf("record encoded as %s does not decode: %v", meta, err)
		}
		want := st
		for _, s := range []*string{&want.ID, &want.Protocol, &want.Client, &want.Account, &want.Backend, &want.Pool, &want.PoolUser} {
			*s = string([]rune(*s)) // each invalid byte as U+FFFD, as encoding/json sends it
		}
		if got.Session != want || !bytes.Equal(got.State, state) {
			t.Fatalf("record %+v encoded as %s decodes as %+v", m, meta, got)
		}
	})
}

// FuzzTakeOver sends one record with 0 to 3 sockets, then the end of
// them, as an old process would, to TakeOver of a daemon with an IMAP
// server. TakeOver reads the end (returns nil) and adopts at most that
// one session; a record that does not decode, lacks its two sockets, or
// is of a protocol not served is never adopted; a session not adopted
// leaves no descriptor open.
func FuzzTakeOver(f *testing.F) {
	for _, s := range fuzzSessionSeeds(f) {
		f.Add(s, uint8(2))
	}
	f.Add([]byte(`{"session":{"id":"x","protocol":"imap"}}`), uint8(1))
	f.Add([]byte(`{"session":{"id":"x","protocol":"imap"}}`), uint8(3))
	f.Add([]byte(`{"session":`), uint8(2))
	logs := &upgradetest.EndLog{}
	d := fuzzDaemon(f, slog.New(logs))
	oldc, newc := upgradetest.Channel(f)
	f.Fuzz(func(t *testing.T, meta []byte, n uint8) {
		if len(meta) > fuzzMetaMax {
			meta = meta[:fuzzMetaMax]
		}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		kept := upgradetest.SendSockets(t, ctx, oldc, kindSession, meta, int(n%4))
		before := upgradetest.OpenFDs(t)
		if err := oldc.Send(ctx, kindSessions, []byte("1")); err != nil {
			t.Fatal(err)
		}
		ends := logs.Ends()
		adopted, err := d.TakeOver(ctx, newc)
		if err != nil {
			t.Fatalf("TakeOver: %v", err)
		}
		upgradetest.Confirmations(t, ctx, oldc, 2) // the record and the end, taken or not
		if adopted != 0 && adopted != 1 {
			t.Fatalf("one session sent, %d adopted", adopted)
		}
		var m sessionMsg
		if jerr := json.Unmarshal(meta, &m); (jerr != nil || len(kept) != 2 || m.Session.Protocol != "imap") && adopted != 0 {
			t.Fatalf("adopted a session of %d sockets, record %+v (%v)", len(kept), m, jerr)
		}
		if adopted == 0 {
			if after := upgradetest.OpenFDs(t); after != before {
				t.Fatalf("%d descriptors before, %d after a session was not adopted", before, after)
			}
			return
		}
		// The session runs here now: it ends, and is logged, when its
		// peers close.
		for _, k := range kept {
			k.Close()
		}
		logs.WaitEnds(t, ends+1)
	})
}

// fuzzDaemon is a daemon with one IMAP server on its engine, as New
// makes it, without listeners: what TakeOver needs.
func fuzzDaemon(f testing.TB, log *slog.Logger) *Daemon {
	s := &Settings{Command: CommandMail, Listen: []Listener{{Addr: "127.0.0.1:0", Protocol: "imap"}}}
	engine := &pipe.Engine{}
	srv, g := testProtocols["imap"].NewServer(s)
	g.Engine = engine
	g.Logger = log
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			f.Errorf("server Shutdown: %v", err)
		}
		if err := engine.Shutdown(ctx); err != nil {
			f.Errorf("engine Shutdown: %v", err)
		}
	})
	return &Daemon{settings: s, log: log, prefix: CommandMail + ": ", servers: []Server{srv}, engine: engine}
}
