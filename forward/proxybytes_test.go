package forward

import (
	"testing"
)

// TestSendProxyBytesCount: bytes_to_upstream (log) and
// pipegate_forward_bytes_total{direction="to_upstream"} count the client's
// bytes; the loops' fast path is to log and count "the same as on the Go
// path" (docs/forward.md). The PROXY header the loops send as the pair's
// first bytes is not the client's: a client that sends nothing shows 0.
func TestSendProxyBytesCount(t *testing.T) { bothAcceptPaths(t, testSendProxyBytesCount) }

func testSendProxyBytesCount(t *testing.T, startServer serverStarter) {
	up := startUpstream(t, nil, proxyEcho)
	_, addr, rec, m := startServer(t, Config{Name: "sp", Upstreams: []string{up}, SendProxy: "v1"})
	c := dial(t, addr)
	if got := roundTrip(t, c, ""); got != c.LocalAddr().String() {
		t.Fatalf("upstream saw %q, want %s", got, c.LocalAddr())
	}
	r := rec.wait(t, "connection closed", 1)
	if r["bytes_to_upstream"] != "0" {
		t.Errorf("client sent 0 bytes; log says bytes_to_upstream=%s (%v)", r["bytes_to_upstream"], r)
	}
	if got := metricValue(t, m.bytes.WithLabelValues("sp", "to_upstream")); got != 0 {
		t.Errorf("client sent 0 bytes; pipegate_forward_bytes_total{to_upstream} = %v", got)
	}
	if got := metricValue(t, m.open.WithLabelValues("sp")); got != 0 {
		t.Errorf("connections_open = %v after close", got)
	}
}
