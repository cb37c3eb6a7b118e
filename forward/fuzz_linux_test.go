package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/upgradetest"
)

// A handed-over pair's record (pairMsg, the meta of a kindPair message)
// comes from the old process of a binary upgrade; the new one decodes it
// in AdoptConn. Fuzzed here: the record's JSON alone, and AdoptConn
// reading records and descriptors from a real upgrade channel.

// fuzzMetaMax bounds the metadata the fuzzers send: within a socket's
// buffer, so that a Send never waits for the reader.
const fuzzMetaMax = 64 << 10

// fuzzListen is the listen address of the forward that adopts pairs.
const fuzzListen = "127.0.0.1:0"

// fuzzPairSeeds are records as HandOverConn encodes them, with a pipe's
// real State.
func fuzzPairSeeds(tb testing.TB) [][]byte {
	state := upgradetest.DetachedState(tb)
	start := time.Now()
	states := []PairState{
		{Forward: fuzzListen, Client: netip.MustParseAddrPort("127.0.0.1:40000"), Peer: netip.MustParseAddrPort("127.0.0.1:40000"),
			Local: netip.MustParseAddrPort("127.0.0.1:8080"), Upstream: "127.0.0.1:9000", Start: start},
		{Forward: "[::1]:443", Client: netip.MustParseAddrPort("[2001:db8::7]:5555"), Peer: netip.MustParseAddrPort("[::1]:40001"),
			Local: netip.MustParseAddrPort("[::1]:443"), SNI: "www.example.org", Upstream: "backend.internal:443", Start: start},
		{Forward: "/run/pipegate/fwd.sock", Upstream: "127.0.0.1:9000"}, // a Unix socket's client: no addresses
	}
	var seeds [][]byte
	for _, st := range states {
		meta, err := json.Marshal(pairMsg{Pair: st, State: state})
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, meta)
	}
	return append(seeds, []byte(`null`), []byte(`{}`), []byte(`{"pair":{"client":"::1"}}`))
}

// FuzzPairMsg: a record the new process decodes is one the old process
// could have sent: it encodes again, and that decodes to the same
// record (the encoding is a fixed point).
func FuzzPairMsg(f *testing.F) {
	for _, s := range fuzzPairSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"pair":{"forward":"x","start":"9999-12-31T23:59:59-23:59"},"state":"AA=="}`))
	f.Add([]byte(`{"PAIR":{"Forward":"x","forward":"y"},"state":"A\nA=="}`))
	f.Fuzz(func(t *testing.T, meta []byte) {
		var m pairMsg
		if err := json.Unmarshal(meta, &m); err != nil {
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("a record decoded as %+v does not encode: %v", m, err)
		}
		var m2 pairMsg
		if err := json.Unmarshal(again, &m2); err != nil {
			t.Fatalf("record re-encoded as %s does not decode: %v", again, err)
		}
		if !samePairMsg(m, m2) {
			t.Fatalf("record %+v re-encodes as %s, which decodes as %+v", m, again, m2)
		}
	})
}

// FuzzPairMsgRoundTrip: a record HandOverConn encodes decodes to the
// same one. Strings go as UTF-8: an invalid byte arrives as U+FFFD (the
// forward's names and SNI are UTF-8 already; see parseClientHello).
func FuzzPairMsgRoundTrip(f *testing.F) {
	f.Add(fuzzListen, []byte{127, 0, 0, 1}, uint16(40000), []byte{127, 0, 0, 1}, uint16(8080), "", "127.0.0.1:9000", time.Now().UnixNano(), upgradetest.DetachedState(f))
	f.Add("[::1]:443", []byte(net.ParseIP("2001:db8::7").To16()), uint16(5555), []byte{}, uint16(0), "www.example.org", "b:443", int64(0), []byte{})
	f.Add("\xff", []byte(net.ParseIP("::ffff:10.0.0.1").To16()), uint16(1), []byte{0}, uint16(1), "\xc3(", "\x00", int64(-1), []byte(nil))
	f.Fuzz(func(t *testing.T, forward string, client []byte, clientPort uint16, local []byte, localPort uint16,
		sni, upstream string, start int64, state []byte) {
		st := PairState{
			Forward: forward, Client: fuzzAddrPort(client, clientPort), Peer: fuzzAddrPort(local, clientPort),
			Local: fuzzAddrPort(local, localPort), SNI: sni, Upstream: upstream,
		}
		if start != 0 {
			st.Start = time.Unix(0, start)
		}
		m := pairMsg{Pair: st, State: state}
		meta, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("record %+v does not encode: %v", m, err)
		}
		var got pairMsg
		if err := json.Unmarshal(meta, &got); err != nil {
			t.Fatalf("record encoded as %s does not decode: %v", meta, err)
		}
		want := m
		want.Pair.Forward, want.Pair.SNI, want.Pair.Upstream = asUTF8(forward), asUTF8(sni), asUTF8(upstream)
		if !samePairMsg(got, want) {
			t.Fatalf("record %+v encoded as %s decodes as %+v", m, meta, got)
		}
	})
}

// fuzzAddrPort is a v4 address of 4 bytes, a v6 one of 16, else none.
func fuzzAddrPort(ip []byte, port uint16) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, port)
}

// asUTF8 is s as encoding/json sends it: each invalid byte as U+FFFD.
func asUTF8(s string) string { return string([]rune(s)) }

func samePairMsg(a, b pairMsg) bool {
	ta, tb := a.Pair.Start, b.Pair.Start
	a.Pair.Start, b.Pair.Start = time.Time{}, time.Time{}
	return ta.Equal(tb) && a.Pair == b.Pair && bytes.Equal(a.State, b.State)
}

// FuzzAdoptConn sends one record with 0 to 3 sockets, then the end of
// them, as an old process would, to AdoptConn of a daemon with one
// forward. AdoptConn reads the end (returns nil) and either adopts the
// pair or closes it, never both, counting it in its log line; a record
// that does not decode, lacks its two sockets, or names another forward
// is never adopted; a pair closed leaves no descriptor open.
func FuzzAdoptConn(f *testing.F) {
	for _, s := range fuzzPairSeeds(f) {
		f.Add(s, uint8(2))
	}
	f.Add([]byte(`{"pair":{"forward":"127.0.0.1:0"},"state":"UEdEUw=="}`), uint8(2))
	f.Add([]byte(`{"pair":{"forward":"127.0.0.1:0"}}`), uint8(1))
	f.Add([]byte(`{"pair":{"forward":"127.0.0.1:0"}}`), uint8(3))
	f.Add([]byte(`{"pair":`), uint8(2))
	taken := &takenLog{}
	logs := &upgradetest.EndLog{Watch: taken.watch}
	d, err := NewDaemon(&DaemonConfig{DrainTimeout: time.Second}, slog.New(logs))
	if err != nil {
		f.Fatal(err)
	}
	cfg := Config{Name: "web", Listen: fuzzListen, Upstreams: []string{"127.0.0.1:1"}}
	if err := d.set.Apply([]Config{cfg}, Drain{Timeout: time.Second}); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := d.set.Shutdown(ctx); err != nil {
			f.Errorf("Shutdown: %v", err)
		}
	})
	oldc, newc := upgradetest.Channel(f)
	f.Fuzz(func(t *testing.T, meta []byte, n uint8) {
		if len(meta) > fuzzMetaMax {
			meta = meta[:fuzzMetaMax]
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		kept := upgradetest.SendSockets(t, ctx, oldc, kindPair, meta, int(n%4))
		before := upgradetest.OpenFDs(t)
		if err := oldc.Send(ctx, kindPairs, []byte("1")); err != nil {
			t.Fatal(err)
		}
		taken.reset()
		ends := logs.Ends()
		if err := d.AdoptConn(ctx, newc, testTimeout); err != nil {
			t.Fatalf("AdoptConn: %v", err)
		}
		upgradetest.Confirmations(t, ctx, oldc, 2) // the record and the end, taken or not
		adopted, closed := taken.counts()
		if adopted+closed != 1 {
			t.Fatalf("one pair sent: %d adopted, %d closed", adopted, closed)
		}
		var m pairMsg
		if jerr := json.Unmarshal(meta, &m); (jerr != nil || len(kept) != 2 || m.Pair.Forward != fuzzListen) && adopted != 0 {
			t.Fatalf("adopted a pair of %d sockets, record %+v (%v)", len(kept), m, jerr)
		}
		if adopted == 0 {
			if after := upgradetest.OpenFDs(t); after != before {
				t.Fatalf("%d descriptors before, %d after a pair closed", before, after)
			}
			return
		}
		// The pair runs here now: it ends, and is logged, when its
		// peers close.
		for _, k := range kept {
			k.Close()
		}
		logs.WaitEnds(t, ends+1)
	})
}

// takenLog keeps the counts of the last "pairs taken over" log line.
type takenLog struct {
	mu              sync.Mutex
	adopted, closed int64
}

func (l *takenLog) watch(r slog.Record) {
	if r.Message != "upgrade: pairs taken over" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "adopted":
			l.adopted = a.Value.Int64()
		case "closed":
			l.closed = a.Value.Int64()
		}
		return true
	})
}

func (l *takenLog) counts() (adopted, closed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.adopted, l.closed
}

// reset forgets the last counts: -1 until the next line.
func (l *takenLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.adopted, l.closed = -1, -1
}
