package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/route"
)

// TestAnswerBounded: a key holding a huge value is an error, not a route
// of 100 000 backends (route.MaxBackends, and at most 64 KiB).
func TestAnswerBounded(t *testing.T) {
	s := newSource(t, Config{})
	seed(t, "route:huge@a.test", strings.Repeat("imap://127.0.0.1:1 ", 100000))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: "huge@a.test"})
	if err == nil {
		t.Fatalf("a %d-byte value gave a route of %d backends; want an error (answer too large)", 19*100000, len(rt.Backends))
	}
}
