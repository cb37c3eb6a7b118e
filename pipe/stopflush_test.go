package pipe

import (
	"bytes"
	"io"
	"testing"
)

// TestStopKeepsAToB: after Handle.Stop (docs/engine.md, "Stopping a
// pipe"), bytes read from A and not yet written to B still go to B within
// the flush bound, in every flavour. A's 1 MiB prefix (bytes already read
// from A) is written to a B that reads slowly; Stop comes after B's peer
// read the first KiB; B's peer then reads on to EOF.
func TestStopKeepsAToB(t *testing.T) {
	for _, s := range stoppers[:3] {
		t.Run(s.name, func(t *testing.T) {
			aIn, aPeer := side(t, kTCP)
			bIn, bPeer := side(t, kUnix)
			fromA := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
			res := make(chan Result, 2)
			h := s.start(t, WithPrefix(aIn, fromA), bIn, func(r Result) { res <- r })
			first := make([]byte, 1024)
			if _, err := io.ReadFull(bPeer, first); err != nil {
				t.Fatal(err)
			}
			restc := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(bPeer); restc <- b }()
			h.Stop([]byte("* BYE\r\n"))
			if got, err := io.ReadAll(aPeer); err != nil || string(got) != "* BYE\r\n" {
				t.Fatalf("A read %q, %v", got, err)
			}
			rest := <-restc
			r := <-res
			if n := len(first) + len(rest); n != len(fromA) {
				t.Fatalf("B got %d of the %d bytes read from A (BytesAToB %d, %s)", n, len(fromA), r.BytesAToB, r.Reason)
			}
		})
	}
}
