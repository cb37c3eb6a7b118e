package forward

import (
	"context"
	"testing"
)

// TestConfigTLSOnGoroutines: the operator's way back to crypto/tls reaches
// the forward's engine, survives a reload, and a reload can change it.
func TestConfigTLSOnGoroutines(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := Config{Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:1"}, TLSOnGoroutines: on}
		srv, err := New(cfg, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.gen.Load().engine.TLSOnGoroutines; got != on {
			t.Fatalf("engine.TLSOnGoroutines = %v, want %v", got, on)
		}
		cfg.IdleTimeout = 1 << 40 // new pipe options: a new engine
		if err := srv.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		if got := srv.gen.Load().engine.TLSOnGoroutines; got != on {
			t.Fatalf("after reload: engine.TLSOnGoroutines = %v, want %v", got, on)
		}
		cfg.TLSOnGoroutines = !on // same pipe options: still a new engine
		if err := srv.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		if got := srv.gen.Load().engine.TLSOnGoroutines; got == on {
			t.Fatalf("after a reload that flips it: engine.TLSOnGoroutines = %v, want %v", got, !on)
		}
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
