package limit

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
)

func BenchmarkConnsAcquireRelease(b *testing.B) {
	c := NewConns(1_000_000, 1000)
	var n atomic.Uint32
	b.RunParallel(func(pb *testing.PB) {
		ip := netip.AddrFrom4([4]byte{127, 0, byte(n.Add(1)), 1})
		for pb.Next() {
			rel, err := c.Acquire(ip)
			if err != nil {
				b.Fatal(err)
			}
			rel()
		}
	})
}

func BenchmarkPenaltyMemory(b *testing.B) {
	ctx := context.Background()
	p := &Penalty{}
	ip := netip.MustParseAddr("127.0.0.1")
	for b.Loop() {
		p.Fail(ctx, ip)
		_ = p.Delay(ctx, ip)
	}
}
