package affinity

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
)

// TestAssignShared: two instances on two clients give a user the same
// member; the session holds the assignment (no TTL), and the last
// SessionEnd starts the expiry.
func TestAssignShared(t *testing.T) {
	realserver.Need(t, redisErr)
	a, b := twoInstances(t, nil)
	ctx := context.Background()

	m1, la := session(t, a, "alice")
	m2, lb := session(t, b, "alice")
	if m1 != m2 {
		t.Fatalf("alice on %q through a, on %q through b", m1, m2)
	}
	as, err := a.Lookup(ctx, "alice")
	if err != nil || as.Member != m1 || as.TTL != 0 || as.Sessions[a.Instance()] != 1 || as.Sessions[b.Instance()] != 1 {
		t.Fatalf("lookup with two sessions: %+v, %v", as, err)
	}
	loads, _, _, err := a.Loads(ctx)
	if err != nil || loads[m1] != 2 {
		t.Fatalf("loads %v, %v; want 2 on %s", loads, err, m1)
	}
	if err := a.SessionEnd(ctx, la); err != nil {
		t.Fatal(err)
	}
	if as, _ := a.Lookup(ctx, "alice"); as.TTL != 0 {
		t.Fatalf("expiring although b holds a session: %+v", as)
	}
	if err := b.SessionEnd(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if err := b.SessionEnd(ctx, lb); err != nil { // twice is harmless
		t.Fatal(err)
	}
	as, _ = a.Lookup(ctx, "alice")
	if as.Member != m1 || as.TTL <= 0 || as.TTL > time.Minute {
		t.Fatalf("after the last session: %+v; want %s expiring within the minute", as, m1)
	}
}

// TestAssignRace: many goroutines on two instances (two clients) assign
// the same new users at once: each user gets one member, the one stored.
func TestAssignRace(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	// 40 racing goroutines under -race on a loaded machine can starve the
	// heartbeat for the 300 ms after which the tests' fast one fences the
	// instance (kicks its leases, as it must): nothing here needs fast
	// beats, so the fence waits 2 s.
	slow := func(c *Config) { c.Heartbeat = time.Second }
	stores := []*Store{
		newStore(t, newClient(t, redisSrv.Addr), pool, slow),
		newStore(t, newClient(t, redisSrv.Addr), pool, slow),
	}
	for _, s := range stores {
		run(t, s, nil)
	}
	assign(t, stores[0], "warm-up") // past the warm-up of the fresh pool
	const nUsers, perStore = 30, 20
	var mu sync.Mutex
	got := map[string]map[string]bool{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, s := range stores {
		for g := 0; g < perStore; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for u := 0; u < nUsers; u++ {
					user := fmt.Sprintf("racer%d", u)
					m, l, err := s.Assign(context.Background(), user)
					if err != nil {
						t.Errorf("assign %s: %v", user, err)
						continue
					}
					s.SessionEnd(context.Background(), l)
					mu.Lock()
					if got[user] == nil {
						got[user] = map[string]bool{}
					}
					got[user][m] = true
					mu.Unlock()
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	for u := 0; u < nUsers; u++ {
		user := fmt.Sprintf("racer%d", u)
		as, err := stores[1].Lookup(context.Background(), user)
		if err != nil {
			t.Fatal(err)
		}
		if len(got[user]) != 1 || !got[user][as.Member] {
			t.Fatalf("%s got members %v; stored %q", user, got[user], as.Member)
		}
	}
}

// TestExpireAfterLastSession: the assignment outlives Expire while a
// session lives, and disappears Expire after the last one ended.
func TestExpireAfterLastSession(t *testing.T) {
	realserver.Need(t, redisErr)
	s := newStore(t, newClient(t, redisSrv.Addr), testPool(t), func(c *Config) {
		c.Expire = 200 * time.Millisecond
		c.Lease = 200 * time.Millisecond
	})
	run(t, s, nil)
	ctx := context.Background()
	m, l := session(t, s, "bob")
	// Longer than Expire and Lease: still held by the session.
	deadline := time.Now().Add(600 * time.Millisecond)
	eventually(t, "600ms pass", func() bool { return time.Now().After(deadline) })
	if as, _ := s.Lookup(ctx, "bob"); as.Member != m {
		t.Fatalf("assignment gone while a session lives: %+v", as)
	}
	s.SessionEnd(ctx, l)
	eventually(t, "bob's assignment expires", func() bool {
		as, err := s.Lookup(ctx, "bob")
		return err == nil && as.Member == ""
	})
}

// TestDeadInstance: an instance that stops heartbeating without ending
// its sessions stops counting at once and is swept by the others; the
// user's assignment then expires.
func TestDeadInstance(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	mod := func(c *Config) { c.Expire = 300 * time.Millisecond }
	a := newStore(t, newClient(t, redisSrv.Addr), pool, mod)
	b := newStore(t, newClient(t, redisSrv.Addr), pool, mod)
	stopA := run(t, a, nil)
	run(t, b, nil)
	ctx := context.Background()
	m, _ := session(t, a, "carol")
	if loads, _, _, _ := b.Loads(ctx); loads[m] != 1 {
		t.Fatalf("loads %v; want carol's session on %s", loads, m)
	}
	stopA() // a dies: no SessionEnd
	eventually(t, "a's sessions stop counting", func() bool {
		loads, _, _, err := b.Loads(ctx)
		return err == nil && loads[m] == 0
	})
	eventually(t, "carol's assignment expires after a is swept", func() bool {
		as, err := b.Lookup(ctx, "carol")
		return err == nil && as.Member == ""
	})
	if n, err := b.rdb.Exists(ctx, b.k.index(a.Instance()), b.k.load(a.Instance())).Result(); err != nil || n != 0 {
		t.Fatalf("a's index and loads left: %d keys, %v", n, err)
	}
}

// TestDrainAndHealth: a drained member takes no new user but keeps its
// users; a member marked down loses its idle users at their next login
// but keeps those with a live session.
func TestDrainAndHealth(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	s := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	run(t, s, nil)
	ctx := context.Background()
	// login is a login that ends without a session: it holds the user
	// only while it runs.
	login := func(u string) string {
		t.Helper()
		m, l := assign(t, s, u)
		s.SessionEnd(ctx, l)
		return m
	}
	login("warm-up")
	var onM1 []string
	for i := 0; len(onM1) < 2 && i < 100; i++ {
		u := fmt.Sprintf("d%d", i)
		if login(u) == "m1" {
			onM1 = append(onM1, u)
		}
	}
	if len(onM1) < 2 {
		t.Fatal("no users on m1 among 100")
	}
	if err := s.SetWeight(ctx, "m1", 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if login(fmt.Sprintf("new%d", i)) == "m1" {
			t.Fatalf("new user on drained m1")
		}
	}
	if m := login(onM1[0]); m != "m1" {
		t.Fatalf("existing user left drained m1 for %s", m)
	}
	// onM1[1] holds a session; onM1[0] is idle.
	_, busy := session(t, s, onM1[1])
	defer s.SessionEnd(ctx, busy)
	if err := s.SetHealth(ctx, "m1", false); err != nil {
		t.Fatal(err)
	}
	if m := login(onM1[0]); m == "m1" {
		t.Fatal("idle user kept on a member that is down")
	}
	if m := login(onM1[1]); m != "m1" {
		t.Fatalf("user with a live session split to %s", m)
	}
}

// TestWeightBounds: a weight above MaxWeight is refused where it is
// configured and where it is set at run time, and the one in force stays.
func TestWeightBounds(t *testing.T) {
	realserver.Need(t, redisErr)
	c := newClient(t, redisSrv.Addr)
	_, err := New(Config{Client: c, Pool: testPool(t), Members: []Member{{"m1", MaxWeight + 1}}})
	if err == nil || !strings.Contains(err.Error(), `member "m1": weight 1001: want 0 to 1000`) {
		t.Fatalf("New with weight %d: %v", MaxWeight+1, err)
	}
	s := newStore(t, c, testPool(t), nil)
	ctx := context.Background()
	if err := s.SetWeight(ctx, "m1", MaxWeight); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWeight(ctx, "m1", MaxWeight+1); err == nil || !strings.Contains(err.Error(), "want 0 to 1000") {
		t.Fatalf("SetWeight(%d): %v", MaxWeight+1, err)
	}
	st, err := s.state(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.weights["m1"] != MaxWeight {
		t.Fatalf("weight in force %d, want %d", st.weights["m1"], MaxWeight)
	}
}

// TestUserCaseFolded: a user's name in another ASCII case is the same
// user (the backends log both into one mailbox): one member, one count of
// sessions, and a move under any spelling kicks every session.
func TestUserCaseFolded(t *testing.T) {
	realserver.Need(t, redisErr)
	a, b := twoInstances(t, nil)
	ctx := context.Background()
	m1, la := session(t, a, "Alice@Example.COM")
	m2, lb := session(t, b, "alice@example.com")
	if m1 != m2 {
		t.Fatalf("Alice@Example.COM on %q, alice@example.com on %q", m1, m2)
	}
	as, err := a.Lookup(ctx, "ALICE@example.com")
	if err != nil || as.User != "alice@example.com" || as.Member != m1 || as.Sessions[a.Instance()] != 1 || as.Sessions[b.Instance()] != 1 {
		t.Fatalf("lookup: %+v, %v; want alice@example.com on %s with a session through each instance", as, err, m1)
	}
	if la.User() != "alice@example.com" || lb.User() != "alice@example.com" {
		t.Errorf("leases of %q and %q", la.User(), lb.User())
	}
	ended := make(chan struct{}, 2)
	for _, x := range []struct {
		s *Store
		l *Lease
	}{{a, la}, {b, lb}} {
		go func() {
			<-x.l.Kicked()
			x.s.SessionEnd(ctx, x.l)
			ended <- struct{}{}
		}()
	}
	r, err := a.Move(ctx, "aLiCe@EXAMPLE.com", otherMember(m1))
	if err != nil || r.User != "alice@example.com" {
		t.Fatalf("move: %+v, %v", r, err)
	}
	<-ended
	<-ended
	if as, err := b.Lookup(ctx, "Alice@Example.COM"); err != nil || as.Member != otherMember(m1) {
		t.Fatalf("after the move: %+v, %v; want %s", as, err, otherMember(m1))
	}
}
