// Package routetest holds what the routing sources' tests share: a
// benchmark of a Router cold and behind route.Cache, a one-line view of a
// Route's backends, and the check of one lookup against what was wanted.
//
//	func BenchmarkLookup(b *testing.B) {
//		routetest.BenchLookup(b, newSource(b), route.Request{Protocol: "imap", Account: "alice@a.test"})
//	}
package routetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/route"
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

// Want is what a lookup of Account should give: with Err "not found",
// route.ErrNotFound; with another Err, an error containing it (and not
// ErrNotFound); else no error, these Backends (as Backends shows them) and
// this Login.
type Want struct {
	Account, Backends, Login, Err string
}

// Check reports through t how the lookup's rt and err differ from w.
func Check(t testing.TB, w Want, rt route.Route, err error) {
	t.Helper()
	switch {
	case w.Err == "not found":
		if !errors.Is(err, route.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", w.Account, err)
		}
	case w.Err != "":
		if err == nil || !strings.Contains(err.Error(), w.Err) || errors.Is(err, route.ErrNotFound) {
			t.Errorf("%s: err = %v, want one containing %q", w.Account, err, w.Err)
		}
	case err != nil:
		t.Errorf("%s: %v", w.Account, err)
	case Backends(rt) != w.Backends || rt.Login != w.Login:
		t.Errorf("%s: %s login %q, want %s login %q", w.Account, Backends(rt), rt.Login, w.Backends, w.Login)
	}
}
