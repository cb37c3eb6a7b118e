package affinity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
)

// TestRedisRestart: with Redis stopped, Assign fails (UNAVAILABLE, no
// guess) and existing sessions are untouched (an outage shorter than the
// outage grace; a longer one closes them: TestCutOffInstanceFences);
// Redis comes back empty, the
// instances re-publish their sessions before any new assignment is made,
// so a user whose session lives keeps its member (here one the ring would
// not choose), and everything recovers by itself.
func TestRedisRestart(t *testing.T) {
	realserver.Need(t, redisErr)
	srv, err := realserver.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	pool := testPool(t)
	// The warm-up covers go-redis's one second between dials after failures.
	mod := func(c *Config) { c.WarmUp, c.OutageGrace = 1500*time.Millisecond, time.Minute }
	a := newStore(t, newClient(t, srv.Addr), pool, mod)
	b := newStore(t, newClient(t, srv.Addr), pool, mod)
	run(t, a, nil)
	run(t, b, nil)
	ctx := context.Background()

	ringChoice, l := assign(t, a, "frank")
	a.SessionEnd(ctx, l)
	moved := otherMember(ringChoice)
	if _, err := a.Move(ctx, "frank", moved); err != nil {
		t.Fatal(err)
	}
	m, live := session(t, a, "frank")
	if m != moved {
		t.Fatalf("frank on %s after the move to %s", m, moved)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Assign(ctx, "frank"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("assign with Redis down: %v; want ErrUnavailable", err)
	}
	if _, _, err := b.Assign(ctx, "newcomer"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("assign of a new user with Redis down: %v; want ErrUnavailable", err)
	}
	select {
	case <-live.Kicked():
		t.Fatal("the live session was kicked by the outage")
	default:
	}

	if err := srv.Start(); err != nil { // empty: no persistence
		t.Fatal(err)
	}
	if m, _ := assign(t, b, "frank"); m != moved {
		t.Fatalf("after the restart frank got %s; his session is on %s", m, moved)
	}
	eventually(t, "loads re-published", func() bool {
		loads, _, _, err := b.Loads(ctx)
		return err == nil && loads[moved] == 1
	})
	if _, l := assign(t, b, "newcomer"); l == nil {
		t.Fatal("no lease")
	}
	select {
	case <-live.Kicked():
		t.Fatal("the live session was kicked by the outage")
	default:
	}
	if err := a.SessionEnd(ctx, live); err != nil {
		t.Fatal(err)
	}
	if as, err := b.Lookup(ctx, "frank"); err != nil || as.Member != moved || as.TTL <= 0 {
		t.Fatalf("after the last session: %+v, %v", as, err)
	}
}
