package evloop

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// tlsTestPair is c1 (a TLS client over raw) -TLS- A | group | B -tcp- c2.
type tlsTestPair struct {
	*testPair
	client *tls.Conn
	raw    net.Conn // the socket under client
}

func addTLSPair(t *testing.T, g *Group) *tlsTestPair {
	t.Helper()
	if !tlsrec.Supported {
		t.Skip("tlsrec does not read this Go release's crypto/tls")
	}
	ca := tlstest.NewCA(t)
	raw, a := socketPair(t, "tcp")
	b, c2 := socketPair(t, "tcp")
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}})
	cli := tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ea, eb, err := TakeConns(Conn{Sock: a, TLS: srv}, Conn{Sock: b})
	if err != nil {
		t.Fatal(err)
	}
	tp := &tlsTestPair{testPair: &testPair{c1: cli, c2: c2, stats: make(chan core.Result, 1)}, client: cli, raw: raw}
	t.Cleanup(func() { raw.Close(); c2.Close() })
	if err := g.Add(ea, eb, core.Options{}, func(s core.Result) { tp.stats <- s }); err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestTLSBadRecordEndsThePair: a record that fails authentication ends the
// pair as an error on side A, after the good bytes before it reached B.
func TestTLSBadRecordEndsThePair(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addTLSPair(t, g)
	if _, err := tp.client.Write([]byte("good")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(tp.c2, got); err != nil || string(got) != "good" {
		t.Fatalf("B read %q, %v", got, err)
	}
	// A record of the right shape whose tag cannot match.
	bad := append([]byte{23, 3, 3, 0, 32}, make([]byte, 32)...)
	if _, err := tp.raw.Write(bad); err != nil {
		t.Fatal(err)
	}
	s := tp.wait(t)
	expect(t, s, core.SideA, core.ReasonError)
	if s.Err == nil || !strings.Contains(s.Err.Error(), "open a TLS record") {
		t.Fatalf("err %v, want a record that did not open", s.Err)
	}
	if s.BytesAToB != 4 {
		t.Fatalf("%d bytes to B, want 4", s.BytesAToB)
	}
}

// TestTLSEOFInsideARecord: the peer's FIN in the middle of a record is an
// error (truncation), not a clean EOF.
func TestTLSEOFInsideARecord(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addTLSPair(t, g)
	if _, err := tp.raw.Write([]byte{23, 3, 3, 0, 40, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	closeWrite(t, tp.raw)
	s := tp.wait(t)
	expect(t, s, core.SideA, core.ReasonError)
	if !errors.Is(s.Err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want io.ErrUnexpectedEOF", s.Err)
	}
}

// TestTLSHalfCloseBothWays: the client's close_notify half-closes B; what
// B sends afterwards still reaches the client, and B's FIN reaches it as
// close_notify (io.EOF from crypto/tls). Bytes count plaintext.
func TestTLSHalfCloseBothWays(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	tp := addTLSPair(t, g)
	if _, err := tp.client.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := tp.client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(tp.c2); err != nil || string(b) != "request" {
		t.Fatalf("B read %q, %v; want the request then EOF", b, err)
	}
	if _, err := tp.c2.Write([]byte("late answer")); err != nil {
		t.Fatal(err)
	}
	closeWrite(t, tp.c2)
	if b, err := io.ReadAll(tp.client); err != nil || string(b) != "late answer" {
		t.Fatalf("client read %q, %v; want the answer then close_notify", b, err)
	}
	s := tp.wait(t)
	expect(t, s, core.SideA, core.ReasonEOF)
	if s.BytesAToB != 7 || s.BytesBToA != 11 {
		t.Fatalf("bytes %d and %d, want 7 and 11 (plaintext)", s.BytesAToB, s.BytesBToA)
	}
}
