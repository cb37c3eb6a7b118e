package gateway

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/pipe"
)

// TestWithBuffered: bytes read past a PROXY header (a *pipe.PrefixConn)
// and bytes in our own buffer come out in order, over the raw conn.
func TestWithBuffered(t *testing.T) {
	raw, other := net.Pipe()
	defer raw.Close()
	defer other.Close()
	prefix := strings.Repeat("0123456789", 4)
	pc := pipe.WithPrefix(raw, []byte(prefix))
	br := bufio.NewReaderSize(pc, 16)
	for range 4 {
		if _, err := br.ReadByte(); err != nil {
			t.Fatal(err)
		}
	}
	c := withBuffered(pc, br)
	got, ok := c.(*pipe.PrefixConn)
	if !ok || got.Conn != raw || string(got.Prefix) != prefix[4:] {
		t.Fatalf("got %#v, want a PrefixConn on the raw conn with %q", c, prefix[4:])
	}
	// Nothing buffered, nothing left: the raw conn itself.
	if c := withBuffered(raw, bufio.NewReader(raw)); c != raw {
		t.Errorf("got %T", c)
	}
}
