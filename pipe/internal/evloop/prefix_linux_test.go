package evloop

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// TestAddWithPrefix: bytes already read from each side reach the other side
// before anything read later and are counted, also a prefix larger than
// the loop's buffers; a prefix's buffer is not pooled (the second pair runs
// on the same loop after the first one's was dropped).
func TestAddWithPrefix(t *testing.T) {
	g := newGroup(t, Config{Loops: 1, NoSplice: true})
	for _, size := range []int{7, 300 << 10} {
		c1, a := socketPair(t, "tcp")
		b, c2 := socketPair(t, "unix")
		ea, eb, err := TakePair(a, b)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c1.Close(); c2.Close() })
		fromA := bytes.Repeat([]byte("a"), size)
		fromB := []byte("greeting from b ")
		stats := make(chan core.Result, 1)
		if _, err := g.AddWithPrefix(ea, eb, fromA, fromB, core.Options{}, func(s core.Result) { stats <- s }); err != nil {
			t.Fatal(err)
		}
		go writeThenClose(c1, []byte("after"))
		go writeThenClose(c2, []byte("reply"))
		gotB, err := io.ReadAll(c2)
		if err != nil || !bytes.Equal(gotB, append(fromA, "after"...)) {
			t.Fatalf("size %d: b got %d bytes (err %v), want the prefix then %q", size, len(gotB), err, "after")
		}
		gotA, err := io.ReadAll(c1)
		if err != nil || string(gotA) != string(fromB)+"reply" {
			t.Fatalf("a got %q (err %v)", gotA, err)
		}
		s := <-stats
		expect(t, s, s.FirstEnd, core.ReasonEOF)
		if s.BytesAToB != int64(size+5) || s.BytesBToA != int64(len(fromB)+5) {
			t.Fatalf("stats %+v", s)
		}
	}
}

func writeThenClose(c net.Conn, b []byte) {
	_, _ = c.Write(b)
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
}
