package affinity

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/internal/realserver"
)

// loseAnswer is a go-redis hook that, once armed, lets the next call of
// one script reach Redis and run there, and then loses its answer, as a
// read timeout does.
type loseAnswer struct {
	hash  string
	armed atomic.Bool
}

func (h *loseAnswer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *loseAnswer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *loseAnswer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && h.runs(cmd.Args()) && h.armed.CompareAndSwap(true, false) {
			err = &net.OpError{Op: "read", Net: "tcp", Err: errTimeout{}}
			cmd.SetErr(err)
		}
		return err
	}
}

// runs reports whether a command runs h's script: EVALSHA with its hash,
// or EVAL with its text (go-redis's fallback when Redis lacks it).
func (h *loseAnswer) runs(args []any) bool {
	if len(args) < 2 {
		return false
	}
	s, _ := args[1].(string)
	switch args[0] {
	case "evalsha":
		return s == h.hash
	case "eval":
		return fmt.Sprintf("%x", sha1.Sum([]byte(s))) == h.hash
	}
	return false
}

type errTimeout struct{}

func (errTimeout) Error() string { return "i/o timeout" }
func (errTimeout) Timeout() bool { return true }

// TestSessionStartAnswerLost: SessionStart's script ran in Redis but its
// answer was lost. The session is refused (ErrUnavailable) and ended, and
// the next heartbeat takes back the session Redis counted: the user has no
// live session left and its assignment expires, instead of pinning the
// user to its member for as long as the instance lives.
func TestSessionStartAnswerLost(t *testing.T) {
	realserver.Need(t, redisErr)
	c := newClient(t, redisSrv.Addr)
	lose := &loseAnswer{hash: scriptStart.Hash()}
	c.AddHook(lose)
	// Heartbeats by hand (beat): none runs behind the test's back.
	a := newStore(t, c, testPool(t), func(cfg *Config) { cfg.Heartbeat = time.Minute; cfg.WarmUp = time.Millisecond })
	ctx := context.Background()
	if err := a.beat(ctx); err != nil {
		t.Fatal(err)
	}
	_, l := assign(t, a, "heidi")
	lose.armed.Store(true)
	if err := a.SessionStart(ctx, l); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("session start with its answer lost: %v, want ErrUnavailable", err)
	}
	if lose.armed.Load() {
		t.Fatal("the session start script never ran")
	}
	as, err := a.Lookup(ctx, "heidi")
	if err != nil || len(as.Sessions) != 1 {
		t.Fatalf("before the heartbeat Redis should count the lost start: %+v, %v", as, err)
	}
	if err := a.SessionEnd(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := a.beat(ctx); err != nil {
		t.Fatal(err)
	}
	as, err = a.Lookup(ctx, "heidi")
	if err != nil {
		t.Fatal(err)
	}
	if len(as.Sessions) != 0 || as.TTL <= 0 {
		t.Errorf("after the heartbeat: sessions %v, expiry %v; want none, and the assignment expiring", as.Sessions, as.TTL)
	}
}

// cutOff is a go-redis hook that fails every command once cut: an
// instance cut off from Redis while the others reach it.
type cutOff struct{ cut atomic.Bool }

var errCut = errors.New("cut off from Redis (test)")

func (h *cutOff) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cutOff) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.cut.Load() {
			cmd.SetErr(errCut)
			return errCut
		}
		return next(ctx, cmd)
	}
}

func (h *cutOff) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.cut.Load() {
			for _, c := range cmds {
				c.SetErr(errCut)
			}
			return errCut
		}
		return next(ctx, cmds)
	}
}

// TestCutOffInstanceFences: an instance whose heartbeats no longer reach
// Redis (the others still do) closes its sessions while the others still
// count it alive: before any of them may give its users to another
// member, so that no user is on two members at once.
func TestCutOffInstanceFences(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	ca := newClient(t, redisSrv.Addr)
	cut := &cutOff{}
	ca.AddHook(cut)
	slow := func(c *Config) { c.Heartbeat = time.Second } // a second of margin between fence and expiry
	a := newStore(t, ca, pool, slow)
	b := newStore(t, newClient(t, redisSrv.Addr), pool, slow)
	run(t, a, nil)
	run(t, b, nil)
	_, l := session(t, a, "grace")
	id := a.Instance()
	cut.cut.Store(true)
	select {
	case <-l.Kicked():
	case <-time.After(20 * time.Second):
		t.Fatal("the cut-off instance kept its session")
	}
	if err := l.Cause(); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrMoving) {
		t.Errorf("the fenced lease's cause: %v; want ErrUnavailable", err)
	}
	ctx := context.Background()
	alive, err := b.rdb.ZScore(ctx, b.k.inst(), id).Result()
	if err != nil {
		t.Fatalf("the cut-off instance's entry: %v", err)
	}
	now, err := b.rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if left := time.UnixMilli(int64(alive)).Sub(now); left <= 0 {
		t.Errorf("the session was closed %v after the other instances could count it gone", -left)
	}
	cut.cut.Store(false)
	if err := a.SessionEnd(ctx, l); err != nil {
		t.Logf("session end: %v", err)
	}
}
