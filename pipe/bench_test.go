package pipe

import (
	"context"
	"io"
	"net"
	"testing"
)

// naiveGo is the reference forwarder: two io.Copy goroutines.
func naiveGo(a, b net.Conn, done chan<- struct{}) {
	go naiveCopy(a, b, done)
	naiveCopy(b, a, done)
}

func naiveCopy(dst, src net.Conn, done chan<- struct{}) {
	_, _ = io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	done <- struct{}{}
}

type forwarder func(b *testing.B, a, bb net.Conn) (wait func())

func viaPipe(b *testing.B, a, bb net.Conn) func() {
	done := make(chan struct{})
	Go(a, bb, nil, func(Result) { close(done) })
	return func() { <-done }
}

// viaEngine enters the pair into an Engine (FlavourAuto: the event loops
// for plain socket pairs).
func viaEngine(b *testing.B, a, bb net.Conn) func() {
	return viaEngineWith(b, &Engine{}, a, bb)
}

// viaEngineTLSGo is viaEngine with TLS pairs kept on goroutines.
func viaEngineTLSGo(b *testing.B, a, bb net.Conn) func() {
	return viaEngineWith(b, &Engine{TLSOnGoroutines: true}, a, bb)
}

func viaEngineWith(b *testing.B, e *Engine, a, bb net.Conn) func() {
	done := make(chan struct{})
	if err := e.Enter(a, bb, func(Result) { close(done) }); err != nil {
		b.Fatal(err)
	}
	return func() { <-done; _ = e.Shutdown(context.Background()) }
}

func viaNaive(b *testing.B, a, bb net.Conn) func() {
	done := make(chan struct{}, 2)
	go naiveGo(a, bb, done)
	return func() { <-done; <-done; a.Close(); bb.Close() }
}

// benchCases are the pairs and forwarders both benchmarks run: plain and
// TLS on either side, through Go, the Engine (TLS on its loops, or kept on
// goroutines) and a naive forwarder.
var benchCases = []struct {
	name   string
	ka, kb kind
	fwd    forwarder
}{
	{"tcp-tcp/pipe", kTCP, kTCP, viaPipe},
	{"tcp-tcp/engine", kTCP, kTCP, viaEngine},
	{"tcp-tcp/naive", kTCP, kTCP, viaNaive},
	{"tls-tcp/pipe", kTLS, kTCP, viaPipe},
	{"tls-tcp/engine", kTLS, kTCP, viaEngine},
	{"tls-tcp/engine-tls-go", kTLS, kTCP, viaEngineTLSGo},
	{"tls-tcp/naive", kTLS, kTCP, viaNaive},
	{"tcp-tls/pipe", kTCP, kTLS, viaPipe},
	{"tcp-tls/engine", kTCP, kTLS, viaEngine},
	{"tcp-tls/engine-tls-go", kTCP, kTLS, viaEngineTLSGo},
}

// BenchmarkThroughput moves b.N chunks of 64 KiB one way through a pipe.
func BenchmarkThroughput(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			a, ap := side(b, c.ka)
			bb, bp := side(b, c.kb)
			wait := c.fwd(b, a, bb)
			chunk := make([]byte, 64<<10)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			got := make(chan int64, 1)
			go func() { n, _ := io.Copy(io.Discard, bp); got <- n }()
			b.ResetTimer()
			for b.Loop() {
				if _, err := ap.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			ap.(interface{ CloseWrite() error }).CloseWrite()
			<-got
			b.StopTimer()
			bp.Close()
			ap.Close()
			wait()
		})
	}
}

// BenchmarkPingPong measures one 64-byte request/response round trip
// through a pipe (latency; allocations per round trip).
func BenchmarkPingPong(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			a, ap := side(b, c.ka)
			bb, bp := side(b, c.kb)
			wait := c.fwd(b, a, bb)
			go echo(bp)
			msg := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ap.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(ap, msg); err != nil {
					b.Fatal(err)
				}
			}
			ap.Close()
			wait()
		})
	}
}

func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	c.Close()
}
