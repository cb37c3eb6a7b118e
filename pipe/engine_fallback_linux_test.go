package pipe

import (
	"crypto/tls"
	"maps"
	"net"
	"testing"

	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// tls12Side is a *tls.Conn (server) over TCP that negotiated TLS 1.2,
// handshake done, and its client peer.
func tls12Side(t *testing.T) (inner, peer net.Conn) {
	t.Helper()
	raw, rawPeer := socketPair(t, "tcp")
	cfg := serverTLS(t).Clone()
	cfg.MaxVersion = tls.VersionTLS12
	srv, cli := tls.Server(raw, cfg), tls.Client(rawPeer, clientTLS(t))
	errc := make(chan error, 1)
	go handshake(srv, errc)
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli
}

// tlsBufferedSide is a TLS 1.3 side whose *tls.Conn holds plaintext the
// application has not read: "uffered " is still in crypto/tls, and the pipe
// must deliver it first.
func tlsBufferedSide(t *testing.T) (inner, peer net.Conn) {
	t.Helper()
	inner, peer = side(t, kTLS)
	write(t, peer, "buffered ")
	if got := readN(t, inner, 1); got != "b" {
		t.Fatalf("read %q", got)
	}
	return inner, peer
}

// withTLSRec is want when the record layer reads this Go release's
// crypto/tls; without it, every TLS 1.3 side counts as tls-go-release.
func withTLSRec(want map[Fallback]uint64) map[Fallback]uint64 {
	if tlsrec.Supported {
		return want
	}
	return map[Fallback]uint64{FallbackTLSGoRelease: 1}
}

// TestEngineCountsFallbacks: each way of missing the event loops is counted
// under its reason in Stats.Fallbacks, and the pipe still works on
// goroutines; pairs the loops take count nothing.
func TestEngineCountsFallbacks(t *testing.T) {
	cases := []struct {
		name    string
		tlsOnGo bool
		a, b    func(t *testing.T) (net.Conn, net.Conn)
		want    map[Fallback]uint64
		lazy    bool   // the TLS handshake is still to be done by the pipe
		first   string // what reaches B's peer before "ping"
		onLoops int64
	}{
		{name: "tcp", a: kindSide(kTCP), b: kindSide(kTCP), onLoops: 1},
		{name: "netpipe-a", a: kindSide(kNetPipe), b: kindSide(kTCP), want: map[Fallback]uint64{FallbackConnType: 1}},
		{name: "tls-over-netpipe-b", a: kindSide(kTCP), b: kindSide(kTLSPipe), want: map[Fallback]uint64{FallbackConnType: 1}},
		{name: "tls-on-goroutines", tlsOnGo: true, a: kindSide(kTLS), b: kindSide(kTCP), want: map[Fallback]uint64{FallbackTLSOnGoroutines: 1}},
		{name: "tls12", a: tls12Side, b: kindSide(kTCP), want: map[Fallback]uint64{FallbackTLSVersion: 1}},
		{name: "tls-handshake-not-done", a: kindSide(kTLSLazy), b: kindSide(kTCP), want: map[Fallback]uint64{FallbackTLSState: 1}, lazy: true},
		{name: "tls-buffered", a: tlsBufferedSide, b: kindSide(kTCP), want: withTLSRec(map[Fallback]uint64{FallbackTLSBuffered: 1}), first: "uffered "},
		{name: "tls13", a: kindSide(kTLS), b: kindSide(kTCP), want: withTLSRec(nil), onLoops: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, ap := c.a(t)
			b, bp := c.b(t)
			e := &Engine{TLSOnGoroutines: c.tlsOnGo}
			defer shutdownNow(e)
			if err := e.Enter(a, b, nil); err != nil {
				t.Fatal(err)
			}
			s := e.Stats()
			if !maps.Equal(s.Fallbacks, c.want) {
				t.Errorf("Fallbacks %v, want %v", s.Fallbacks, c.want)
			}
			wantLoops := c.onLoops
			if len(c.want) > 0 {
				wantLoops = 0 // tls13 without tlsrec
			}
			if s.OnLoops != wantLoops {
				t.Errorf("OnLoops %d, want %d", s.OnLoops, wantLoops)
			}
			if c.lazy {
				return // the handshake would need the other side driven too
			}
			write(t, ap, "ping")
			if got := readN(t, bp, len(c.first)+4); got != c.first+"ping" {
				t.Fatalf("B's peer read %q, want %q", got, c.first+"ping")
			}
		})
	}
}

// TestEngineFallbacksAddUp: one Engine counts every pipe that missed the
// loops, by reason, and AllFallbacks reads every reason (zeros included).
func TestEngineFallbacksAddUp(t *testing.T) {
	e := &Engine{}
	defer shutdownNow(e)
	enter := func(a, b func(t *testing.T) (net.Conn, net.Conn)) {
		ca, _ := a(t)
		cb, _ := b(t)
		if err := e.Enter(ca, cb, nil); err != nil {
			t.Fatal(err)
		}
	}
	enter(kindSide(kNetPipe), kindSide(kTCP))
	enter(kindSide(kTCP), kindSide(kNetPipe))
	enter(tls12Side, kindSide(kTCP))
	enter(kindSide(kTCP), kindSide(kUnix)) // on the loops: not counted
	s := e.Stats()
	want := map[Fallback]uint64{FallbackConnType: 2, FallbackTLSVersion: 1}
	if !maps.Equal(s.Fallbacks, want) {
		t.Fatalf("Fallbacks %v, want %v", s.Fallbacks, want)
	}
	if s.Total != 4 || s.OnLoops != 1 {
		t.Fatalf("Total %d, OnLoops %d; want 4 and 1", s.Total, s.OnLoops)
	}
	all := AllFallbacks()
	var sum uint64
	labels := map[string]bool{}
	for _, f := range all {
		sum += s.Fallbacks[f]
		labels[f.String()] = true
	}
	if sum != 3 || len(labels) != len(all) || labels["unknown"] {
		t.Fatalf("AllFallbacks %v: sum %d, labels %v", all, sum, labels)
	}
	if got := FallbackConnType.String() + "," + FallbackTLSVersion.String(); got != "conn-type,tls-version" {
		t.Fatalf("labels %s", got)
	}
}

// kindSide adapts side to the cases' constructors.
func kindSide(k kind) func(t *testing.T) (net.Conn, net.Conn) {
	return func(t *testing.T) (net.Conn, net.Conn) { return side(t, k) }
}
