package affinity

import (
	"context"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
)

// TestMoveEndPastDeadline: a move still running when its deadline in
// Redis passed (from then on logins went to the old member again) is
// dropped at its end: the old member stays. Within its deadline a move
// ends as usual. The deadline covers the mover's waits, settle included.
func TestMoveEndPastDeadline(t *testing.T) {
	realserver.Need(t, redisErr)
	a := newStore(t, newClient(t, redisSrv.Addr), testPool(t), func(c *Config) { c.Settle = 6 * time.Second })
	if d, waits := a.moveDeadline(), a.cfg.KickDelay+a.cfg.Settle; d <= waits {
		t.Errorf("move deadline %v, yet a move may wait %v (kick delay and settle)", d, waits)
	}
	ctx := context.Background()
	uk := a.k.user("erin")
	keys := []string{uk, a.k.inst()}
	if err := a.rdb.HSet(ctx, uk, "m", "m1").Err(); err != nil {
		t.Fatal(err)
	}
	// A move that began with its deadline already behind it.
	if _, err := scriptMoveBegin.Run(ctx, a.rdb, keys, -1000, "late").Slice(); err != nil {
		t.Fatal(err)
	}
	got, err := scriptMoveEnd.Run(ctx, a.rdb, keys, "late", "m2", ms(time.Minute)).Text()
	if err != nil {
		t.Fatal(err)
	}
	if m := a.rdb.HGet(ctx, uk, "m").Val(); got != "expired" || m != "m1" {
		t.Errorf("move past its deadline: %q, member %q; want expired, m1", got, m)
	}
	if n := a.rdb.HExists(ctx, uk, "t").Val(); n {
		t.Error("the dropped move's id stayed")
	}
	// One within its deadline.
	if _, err := scriptMoveBegin.Run(ctx, a.rdb, keys, ms(time.Minute), "timely").Slice(); err != nil {
		t.Fatal(err)
	}
	got, err = scriptMoveEnd.Run(ctx, a.rdb, keys, "timely", "m2", ms(time.Minute)).Text()
	if err != nil {
		t.Fatal(err)
	}
	if m := a.rdb.HGet(ctx, uk, "m").Val(); got != "ok" || m != "m2" {
		t.Errorf("move within its deadline: %q, member %q; want ok, m2", got, m)
	}
}
