package affinity

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
)

// otherMember returns a member that is not m.
func otherMember(m string) string {
	if m == "m1" {
		return "m2"
	}
	return "m1"
}

// TestMove: a user with sessions on two instances is moved: both sessions
// are kicked; while they close, neither instance lets a login through;
// the move waits for both confirmations, and then the new member is used.
func TestMove(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	a := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	b := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	kickedOn := make(chan string, 2)
	run(t, a, func(u string) { kickedOn <- "a:" + u })
	run(t, b, func(u string) { kickedOn <- "b:" + u })
	ctx := context.Background()
	from, la := session(t, a, "dave")
	_, lb := session(t, b, "dave")
	to := otherMember(from)

	// Each "gateway" closes its session when kicked, after checking that
	// no new login of dave gets through meanwhile, on either instance.
	closed := make(chan error, 2)
	for _, x := range []struct {
		s *Store
		l *Lease
	}{{a, la}, {b, lb}} {
		go func() {
			<-x.l.Kicked()
			if err := x.l.Cause(); !errors.Is(err, ErrMoving) {
				closed <- fmt.Errorf("kicked by a move with the cause %v", err)
				return
			}
			_, _, errA := a.Assign(ctx, "dave")
			_, _, errB := b.Assign(ctx, "dave")
			x.s.SessionEnd(ctx, x.l)
			if !errors.Is(errA, ErrMoving) || !errors.Is(errB, ErrMoving) {
				closed <- fmt.Errorf("login during the move: %v / %v", errA, errB)
				return
			}
			closed <- nil
		}()
	}
	r, err := a.Move(ctx, "dave", to)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	}
	if r.From != from || r.To != to || r.Instances != 2 || r.Confirmed != 2 || r.TimedOut {
		t.Fatalf("move result %+v; want %s→%s confirmed by 2", r, from, to)
	}
	got := map[string]bool{<-kickedOn: true, <-kickedOn: true}
	if !got["a:dave"] || !got["b:dave"] {
		t.Fatalf("onKick calls %v", got)
	}
	for _, s := range []*Store{a, b} {
		if m, _ := assign(t, s, "dave"); m != to {
			t.Fatalf("after the move: %s; want %s", m, to)
		}
	}
	if err := a.SessionStart(ctx, la); err == nil {
		t.Fatal("an ended lease started")
	}
}

// TestMoveTimeout: an instance that never closes the session holds the
// move only for the kick delay; a login that was in progress on the old
// member cannot start its session afterwards.
func TestMoveTimeout(t *testing.T) {
	realserver.Need(t, redisErr)
	s := newStore(t, newClient(t, redisSrv.Addr), testPool(t), func(c *Config) { c.KickDelay = 200 * time.Millisecond })
	run(t, s, nil)
	ctx := context.Background()
	from, stuck := session(t, s, "erin")
	defer s.SessionEnd(ctx, stuck)
	_, pending := assign(t, s, "erin") // a login in progress
	defer s.SessionEnd(ctx, pending)
	r, err := s.Move(ctx, "erin", otherMember(from))
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Confirmed != 0 || r.Instances != 1 {
		t.Fatalf("move result %+v; want timed out, unconfirmed", r)
	}
	select {
	case <-pending.Kicked():
	default:
		t.Fatal("the pending login was not kicked")
	}
	if err := s.SessionStart(ctx, pending); !errors.Is(err, ErrMoving) && !errors.Is(err, ErrLost) {
		t.Fatalf("session start of a login from before the move: %v", err)
	}
	if m, _ := assign(t, s, "erin"); m != r.To {
		t.Fatalf("after the move: %s; want %s", m, r.To)
	}
	// A second move while one runs is refused.
	if _, err := s.rdb.HSet(ctx, s.k.user("erin"), "v", time.Now().Add(time.Hour).UnixMilli(), "t", "x").Result(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Move(ctx, "erin", from); !errors.Is(err, ErrMoving) {
		t.Fatalf("move during a move: %v", err)
	}
}

// TestEvacuate: every user of a member moves to the others, kicked, and
// new users avoid it.
func TestEvacuate(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	s := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	run(t, s, nil)
	ctx := context.Background()
	assign(t, s, "warm-up")
	var leases []*Lease
	for i := 0; i < 30; i++ {
		m, l := session(t, s, fmt.Sprintf("ev%d", i))
		if m == "m3" {
			leases = append(leases, l)
			go endWhenKicked(s, l)
		} else {
			defer s.SessionEnd(ctx, l)
		}
	}
	if len(leases) == 0 {
		t.Fatal("no user on m3 among 30")
	}
	moved, err := s.Evacuate(ctx, "m3")
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != len(leases) {
		t.Fatalf("moved %d users; m3 had %d", len(moved), len(leases))
	}
	for _, r := range moved {
		if r.From != "m3" || r.To == "m3" || r.TimedOut {
			t.Fatalf("move %+v", r)
		}
		if m, _ := assign(t, s, r.User); m != r.To {
			t.Fatalf("%s on %s after evacuation; want %s", r.User, m, r.To)
		}
	}
	if users, _ := s.usersOf(ctx, "m3"); len(users) != 0 {
		t.Fatalf("left on m3: %v", users)
	}
}

func endWhenKicked(s *Store, l *Lease) {
	<-l.Kicked()
	s.SessionEnd(context.Background(), l)
}

// TestMoveSettles: once the sessions are closed, a move still holds the
// user for Settle (the old member's processes finish writing): logins
// meanwhile get ErrMoving, and a cancelled move leaves no new member.
func TestMoveSettles(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	a := newStore(t, newClient(t, redisSrv.Addr), pool, func(c *Config) { c.Settle = time.Hour })
	run(t, a, nil)
	ctx := context.Background()
	from, l := session(t, a, "erin")
	go func() { // the gateway closes the session when kicked
		<-l.Kicked()
		a.SessionEnd(ctx, l)
	}()
	mctx, cancel := context.WithCancel(ctx)
	moved := make(chan error, 1)
	go func() {
		_, err := a.Move(mctx, "erin", otherMember(from))
		moved <- err
	}()
	<-l.Kicked()
	eventually(t, "the kicked session ended", func() bool {
		n, _ := func() (int, string) { a.mu.Lock(); defer a.mu.Unlock(); return a.localCount("erin") }()
		return n == 0
	})
	// Settling: the move is still on.
	if _, _, err := a.Assign(ctx, "erin"); !errors.Is(err, ErrMoving) {
		t.Fatalf("login while the move settles: %v, want ErrMoving", err)
	}
	cancel()
	if err := <-moved; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled move: %v", err)
	}
	as, err := a.Lookup(ctx, "erin")
	if err != nil || as.Member != from {
		t.Errorf("after a cancelled move: %+v %v; want still on %s", as, err, from)
	}
}

// TestMoveUsers: MoveUsers moves every user of a member elsewhere without
// draining it (what a member taken out by the health checks gets).
func TestMoveUsers(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	a := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	run(t, a, nil)
	ctx := context.Background()
	on := map[string][]string{}
	for i := range 12 {
		u := fmt.Sprintf("user%d", i)
		m, l := assign(t, a, u)
		a.SessionEnd(ctx, l)
		on[m] = append(on[m], u)
	}
	if err := a.SetHealth(ctx, "m1", false); err != nil {
		t.Fatal(err)
	}
	moved, err := a.MoveUsers(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != len(on["m1"]) {
		t.Errorf("moved %d users, want m1's %d", len(moved), len(on["m1"]))
	}
	for _, u := range on["m1"] {
		as, err := a.Lookup(ctx, u)
		if err != nil || as.Member == "m1" || as.Member == "" {
			t.Errorf("%s: %+v %v; want moved off m1", u, as, err)
		}
	}
	_, weights, _, err := a.Loads(ctx)
	if err != nil || weights["m1"] != 1 {
		t.Errorf("m1's weight %v, %v; want 1 (not drained)", weights, err)
	}
}
