package affinity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var (
	redisSrv *realserver.Redis
	redisErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipegate-affinity-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisSrv, redisErr = realserver.StartRedis(dir)
	realserver.RunTests(m, func() { redisSrv.Stop() }, func() { os.RemoveAll(dir) })
}

// newClient returns a client as the gateway should make one: short
// timeouts, no retries, no background goroutine.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, DisableIdentity: true, PoolSize: 64, DialerRetries: 1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { c.Close() })
	return c
}

var poolSeq atomic.Int64

// testPool returns a pool name no other test uses.
func testPool(t testing.TB) string {
	return fmt.Sprintf("%s-%d", t.Name(), poolSeq.Add(1))
}

var threeMembers = []Member{{"m1", 1}, {"m2", 1}, {"m3", 1}}

// newStore makes a store with fast heartbeats (so that the warm-up and
// the death of an instance take a fraction of a second).
func newStore(t testing.TB, c redis.UniversalClient, pool string, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{Client: c, Pool: pool, Members: threeMembers, Heartbeat: 150 * time.Millisecond,
		KickDelay: 2 * time.Second, Settle: -1, Expire: time.Minute, WarmUp: 500 * time.Millisecond, OutageGrace: -1,
		OnError: func(err error) { t.Logf("background: %v", err) }}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs s.Subscribe until the test ends and waits until it joined.
func run(t testing.TB, s *Store, onKick func(string)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, onKick) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	select {
	case <-s.Joined():
	case <-time.After(10 * time.Second):
		t.Fatal("instance did not join in 10s")
	}
	return stop
}

// twoInstances runs two instances of one new pool, each on a client of
// its own, until the test ends.
func twoInstances(t testing.TB, mod func(*Config)) (a, b *Store) {
	t.Helper()
	pool := testPool(t)
	a = newStore(t, newClient(t, redisSrv.Addr), pool, mod)
	b = newStore(t, newClient(t, redisSrv.Addr), pool, mod)
	run(t, a, nil)
	run(t, b, nil)
	return a, b
}

// eventually polls cond until it holds or 10s passed (Redis TTLs and
// heartbeats have no event to wait for).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not after 10s: %s", what)
		}
		<-tick.C
	}
}

// assign calls Assign, waiting through the warm-up of a fresh store.
func assign(t testing.TB, s *Store, user string) (string, *Lease) {
	t.Helper()
	var member string
	var lease *Lease
	var err error
	eventually(t, "assign "+user+" past the warm-up", func() bool {
		member, lease, err = s.Assign(context.Background(), user)
		return err == nil || !errors.Is(err, ErrUnavailable)
	})
	if err != nil {
		t.Fatalf("assign %q: %v", user, err)
	}
	return member, lease
}

// session assigns and starts a session of user.
func session(t testing.TB, s *Store, user string) (string, *Lease) {
	t.Helper()
	m, l := assign(t, s, user)
	if err := s.SessionStart(context.Background(), l); err != nil {
		t.Fatalf("session start %q on %q: %v", user, m, err)
	}
	return m, l
}
