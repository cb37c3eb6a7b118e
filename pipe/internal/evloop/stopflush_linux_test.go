package evloop

import (
	"bytes"
	"io"
	"testing"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// TestStopWritesPendingAToB: bytes already read from A (here a prefix of
// 1 MiB) and not yet written to B still go to B after Pair.Stop, while B
// takes them ("Bytes read from A and not yet written to B are written
// while B takes them", bounded by core.FlushTimeout), and count.
func TestStopWritesPendingAToB(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	c1, a := socketPair(t, "tcp")
	b, c2 := socketPair(t, "unix") // small buffers: B cannot take it all at once
	t.Cleanup(func() { c1.Close(); c2.Close() })
	ea, eb, err := TakePair(a, b)
	if err != nil {
		t.Fatal(err)
	}
	fromA := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	res := make(chan core.Result, 2)
	pr, err := g.AddWithPrefix(ea, eb, fromA, nil, core.Options{}, func(r core.Result) { res <- r })
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1024)
	if _, err := io.ReadFull(c2, first); err != nil { // the pair is running
		t.Fatal(err)
	}
	restc := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(c2); restc <- b }()
	pr.Stop([]byte("bye\r\n"))
	if got, err := io.ReadAll(c1); err != nil || string(got) != "bye\r\n" {
		t.Fatalf("A read %q, %v", got, err)
	}
	rest := <-restc
	got := len(first) + len(rest)
	r := <-res
	if got != len(fromA) || r.BytesAToB != int64(len(fromA)) {
		t.Fatalf("B got %d of the %d bytes read from A (BytesAToB %d, reason %s)", got, len(fromA), r.BytesAToB, r.Reason)
	}
}
