package evloop

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// keyUpdates seals n KeyUpdate records (update_not_requested) with
// st's sending keys, using only tlsrec's exported API: a State encoded
// with its "answer due" flag set seals a KeyUpdate before its (here no)
// data.
func keyUpdates(t *testing.T, st *tlsrec.State, n int) (*tlsrec.State, []byte) {
	t.Helper()
	var wire []byte
	for range n {
		enc := st.AppendBinary(nil)
		enc[3] |= 2 // answerUpdate
		next, _, err := tlsrec.ParseState(enc)
		if err != nil {
			t.Fatal(err)
		}
		if wire, err = next.Seal(wire, nil); err != nil {
			t.Fatal(err)
		}
		st = next
	}
	return st, wire
}

// TestKeyUpdateFloodEndsPair: a TLS client on the loops sends
// thousands of KeyUpdates without data (each costs the loop an HKDF
// derivation and a new AEAD; ~5 µs against ~0.1 µs for a data record of
// the same 27 bytes). crypto/tls, on the goroutine path, ends such a
// connection after 16 records in a row that carry nothing, and so does
// the loop: the pair ends, and the data behind the flood never arrives.
func TestKeyUpdateFloodEndsPair(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addTLSPair(t, g) // skips where tlsrec cannot read crypto/tls
	cs, err := tlsrec.Export(tp.client)
	if err != nil {
		t.Fatal(err)
	}
	cs, wire := keyUpdates(t, cs, 2000)
	wire, err = cs.Seal(wire, []byte("data after 2000 KeyUpdates"))
	if err != nil {
		t.Fatal(err)
	}
	go tp.raw.Write(wire)
	_ = tp.c2.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 26)
	if _, err := io.ReadFull(tp.c2, got); err == nil {
		t.Fatalf("B read %q: 2000 KeyUpdates in a row were opened one by one (crypto/tls stops at 16)", got)
	} else if errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	r := <-tp.stats
	if r.Reason != core.ReasonError {
		t.Fatalf("result %+v, want an error", r)
	}
}
