// Package routetest holds what the routing sources' tests share: a
// benchmark of a Router cold and behind route.Cache, and a one-line view of
// a Route's backends for assertions.
//
//	func BenchmarkLookup(b *testing.B) {
//		routetest.BenchLookup(b, newSource(b), route.Request{Protocol: "imap", Account: "alice@a.test"})
//	}
package routetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"pipegate/route"
)

// BenchLookup measures r.Lookup(req) cold (every lookup reaches the
// source), cold from parallel goroutines, and warm (behind route.Cache).
func BenchLookup(b *testing.B, r route.Router, req route.Request) {
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Lookup(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Lookup(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("warm", func(b *testing.B) {
		c := route.Cache(r, time.Minute, time.Minute, 0)
		for b.Loop() {
			if _, err := c.Lookup(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Backends returns rt's backends as URLs, space-separated, in order.
func Backends(rt route.Route) string {
	out := make([]string, 0, len(rt.Backends))
	for _, b := range rt.Backends {
		out = append(out, b.String())
	}
	return strings.Join(out, " ")
}
