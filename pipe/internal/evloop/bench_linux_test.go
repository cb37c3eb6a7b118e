package evloop

import (
	"io"
	"testing"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// BenchmarkRoundTrip: 64-byte request/response through one TCP pair.
func BenchmarkRoundTrip(b *testing.B) {
	g := newGroup(b, Config{Loops: 1})
	tp := addPair(b, g, "tcp", "tcp", core.Options{})
	go func() { // c2 echoes
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(tp.c2, buf); err != nil {
				return
			}
			if _, err := tp.c2.Write(buf); err != nil {
				return
			}
		}
	}()
	msg, in := make([]byte, 64), make([]byte, 64)
	b.ResetTimer()
	for b.Loop() {
		if _, err := tp.c1.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(tp.c1, in); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	tp.c1.Close()
	tp.c2.Close()
	tp.wait(b)
}

// BenchmarkBulk: one direction, 512 KiB writes through one TCP pair (splice)
// or with NoSplice (pooled buffer).
func BenchmarkBulk(b *testing.B) {
	for _, noSplice := range []bool{false, true} {
		name := "splice"
		if noSplice {
			name = "buffer"
		}
		b.Run(name, func(b *testing.B) {
			g := newGroup(b, Config{Loops: 1, NoSplice: noSplice})
			tp := addPair(b, g, "tcp", "tcp", core.Options{})
			done := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, tp.c2)
				done <- n
			}()
			chunk := pattern[:1<<19]
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := tp.c1.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			closeWrite(b, tp.c1)
			<-done
			b.StopTimer()
			closeWrite(b, tp.c2)
			tp.wait(b)
		})
	}
}
