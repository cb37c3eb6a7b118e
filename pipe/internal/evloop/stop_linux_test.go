package evloop

import (
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// addStoppable is addPair returning the Pair, for side A given as conn
// (a TLS server conn over sockA, or sockA itself).
func addStoppable(t *testing.T, g *Group, a Conn, b net.Conn) (Pair, chan core.Result) {
	t.Helper()
	ea, eb, err := TakeConns(a, Conn{Sock: b})
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan core.Result, 2)
	pr, err := g.AddWithPrefix(ea, eb, nil, nil, core.Options{}, func(r core.Result) { res <- r })
	if err != nil {
		t.Fatal(err)
	}
	return pr, res
}

// TestPairStop: B's bytes, then the farewell, then EOF reach A's peer
// (plain and TLS), also for a Stop that arrives with the pair itself.
func TestPairStop(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	Pair{}.Stop([]byte("nothing")) // the zero Pair refers to nothing
	for _, tc := range []struct {
		name  string
		tls   bool
		hello string // B's peer's bytes before the stop; "": stop at once
	}{{"plain", false, "hello"}, {"plain-at-once", false, ""}, {"tls", true, "hello"}, {"tls-at-once", true, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			c1, a := socketPair(t, "tcp")
			b, c2 := socketPair(t, "tcp")
			t.Cleanup(func() { c1.Close(); c2.Close() })
			side := Conn{Sock: a}
			if tc.tls {
				if !tlsrec.Supported {
					t.Skip("tlsrec does not read this Go release's crypto/tls")
				}
				ca := tlstest.NewCA(t)
				srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}})
				cli := tls.Client(c1, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
				errc := make(chan error, 1)
				go func() { errc <- srv.Handshake() }()
				if err := cli.Handshake(); err != nil {
					t.Fatal(err)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				side.TLS, c1 = srv, cli
			}
			pr, res := addStoppable(t, g, side, b)
			if tc.hello != "" {
				if _, err := c2.Write([]byte(tc.hello)); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(tc.hello))
				if _, err := io.ReadFull(c1, got); err != nil || string(got) != tc.hello {
					t.Fatalf("A read %q, %v", got, err)
				}
			}
			pr.Stop([]byte("bye\r\n"))
			pr.Stop([]byte("again\r\n"))
			rest, err := io.ReadAll(c1)
			if err != nil || string(rest) != "bye\r\n" {
				t.Fatalf("after Stop A read %q, %v", rest, err)
			}
			r := <-res
			expect(t, r, core.SideNone, core.ReasonStopped)
			if r.BytesBToA != int64(len(tc.hello)+5) || r.Err != nil {
				t.Fatalf("result %+v", r)
			}
		})
	}
}
