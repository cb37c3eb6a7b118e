package affinity

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
)

// runHealth runs RunHealth on each store until the test ends.
func runHealth(t *testing.T, cfg HealthConfig, probe Probe, stores ...*Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.RunHealth(ctx, cfg, probe); !errors.Is(err, context.Canceled) {
				t.Errorf("RunHealth returned %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// TestHealthSharedProbing: two instances check the same members, but a
// member is probed by one at a time, and at least an interval passes
// between the end of a probe and the start of the next one: N instances
// do not probe N times as often.
func TestHealthSharedProbing(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	a := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	b := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	const interval = 40 * time.Millisecond
	const want = 8
	var mu sync.Mutex
	inFlight := map[string]int{}
	lastEnd := map[string]time.Time{}
	count := map[string]int{}
	var problems []string
	probe := func(ctx context.Context, member string) error {
		mu.Lock()
		inFlight[member]++
		if inFlight[member] > 1 {
			problems = append(problems, member+": two probes at once")
		}
		if end, ok := lastEnd[member]; ok && time.Since(end) < interval*9/10 {
			problems = append(problems, member+": probed again "+time.Since(end).String()+" after the last probe")
		}
		count[member]++
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight[member]--
			lastEnd[member] = time.Now()
			mu.Unlock()
		}()
		return nil
	}
	runHealth(t, HealthConfig{Interval: interval, Timeout: time.Second}, probe, a, b)
	eventually(t, "each member probed 8 times", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range threeMembers {
			if count[m.Name] < want {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("probing not shared: %v", problems)
	}
	h, err := a.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !h["m1"].Up || h["m1"].OKs < want-1 || h["m1"].Checked.IsZero() {
		t.Fatalf("m1's health record %+v", h["m1"])
	}
}

// stepProbe lets a test decide each probe of m1 (the others succeed):
// the probe waits for the outcome sent on the channel.
func stepProbe() (Probe, chan<- error) {
	step := make(chan error)
	return func(ctx context.Context, member string) error {
		if member != "m1" {
			return nil
		}
		select {
		case err := <-step:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, step
}

// changes records HealthConfig.OnChange calls.
type changes struct {
	mu   sync.Mutex
	got  []string
	more chan struct{} // a call came
}

func (c *changes) on(member string, healthy bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := member + " down"
	if healthy {
		s = member + " up"
	}
	if err != nil {
		s += ": " + err.Error()
	}
	c.got = append(c.got, s)
	if c.more == nil {
		c.more = make(chan struct{}, 1)
	}
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// wait waits until OnChange was called n times (it runs after the state
// is in Redis, where the test looks first) and returns the calls.
func (c *changes) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if c.more == nil {
			c.more = make(chan struct{}, 1)
		}
		got, more := append([]string(nil), c.got...), c.more
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-more:
		case <-deadline:
			return got
		}
	}
}

func (c *changes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// feed sends outcome to the next probe of m1 and waits until Redis has
// counted it (fails consecutive failures, oks consecutive successes).
func feed(t *testing.T, s *Store, step chan<- error, outcome error, fails, oks int) MemberHealth {
	t.Helper()
	select {
	case step <- outcome:
	case <-time.After(10 * time.Second):
		t.Fatal("m1 not probed within 10s")
	}
	var h MemberHealth
	eventually(t, "the probe is counted", func() bool {
		hs, err := s.Health(context.Background())
		h = hs["m1"]
		return err == nil && h.Fails == fails && h.OKs == oks
	})
	return h
}

// TestHealthFallRise: with Fall=3 a member goes down at the third
// consecutive failure, whichever instance probed; it takes no new users
// then; with Rise=2 it comes back at the second consecutive success.
func TestHealthFallRise(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	a := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	b := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	probe, step := stepProbe()
	var ch changes
	cfg := HealthConfig{Interval: 10 * time.Millisecond, Timeout: time.Minute, Fall: 3, Rise: 2, OnChange: ch.on}
	runHealth(t, cfg, probe, a, b)
	refused := errors.New("connection refused")
	for i := 1; i <= 2; i++ {
		if h := feed(t, a, step, refused, i, 0); !h.Up || h.LastError != "connection refused" {
			t.Fatalf("after %d failures: %+v; want up", i, h)
		}
	}
	if h := feed(t, a, step, refused, 3, 0); h.Up {
		t.Fatalf("after 3 failures: %+v; want down", h)
	}
	if _, _, down, err := b.Loads(context.Background()); err != nil || !down["m1"] {
		t.Fatalf("down set %v, %v; want m1", down, err)
	}
	if h := feed(t, a, step, refused, 4, 0); h.Up {
		t.Fatalf("after 4 failures: %+v", h)
	}
	if h := feed(t, a, step, nil, 0, 1); h.Up {
		t.Fatalf("up after one success: %+v; want Rise=2", h)
	}
	if h := feed(t, a, step, nil, 0, 2); !h.Up || h.LastError != "" {
		t.Fatalf("after 2 successes: %+v; want up", h)
	}
	want := []string{"m1 down: connection refused", "m1 up"}
	if got := ch.wait(t, 2); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("OnChange calls %q; want %q", got, want)
	}
}

// TestHealthFlapping: failures that never come Fall times in a row never
// take the member down.
func TestHealthFlapping(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	a := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	b := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	probe, step := stepProbe()
	var ch changes
	runHealth(t, HealthConfig{Interval: 10 * time.Millisecond, Timeout: time.Minute, Fall: 3, Rise: 2, OnChange: ch.on}, probe, a, b)
	bad := errors.New("bad greeting")
	for i := 0; i < 4; i++ {
		if h := feed(t, b, step, bad, 1, 0); !h.Up {
			t.Fatalf("round %d: down after one failure: %+v", i, h)
		}
		if i%2 == 1 { // two failures in a row, then a success
			if h := feed(t, b, step, bad, 2, 0); !h.Up {
				t.Fatalf("round %d: down after two failures: %+v", i, h)
			}
		}
		if h := feed(t, b, step, nil, 0, 1); !h.Up {
			t.Fatalf("round %d: %+v", i, h)
		}
	}
	if got := ch.list(); len(got) != 0 {
		t.Fatalf("health changed: %q", got)
	}
}

// TestHealthStopMidProbe: a probe cut short by the end of RunHealth is
// not counted, and its turn is given back at once.
func TestHealthStopMidProbe(t *testing.T) {
	realserver.Need(t, redisErr)
	s := newStore(t, newClient(t, redisSrv.Addr), testPool(t), func(c *Config) { c.Members = []Member{{"m1", 1}} })
	started := make(chan struct{})
	probe := func(ctx context.Context, _ string) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunHealth(ctx, HealthConfig{Interval: time.Minute, Timeout: time.Minute}, probe) }()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunHealth: %v", err)
	}
	bg := context.Background()
	if n, err := s.rdb.Exists(bg, s.k.healthLock("m1"), s.k.health("m1")).Result(); err != nil || n != 0 {
		t.Fatalf("lock or count left: %d keys, %v", n, err)
	}
	if err := s.RunHealth(bg, HealthConfig{}, nil); err == nil {
		t.Fatal("nil probe accepted")
	}
}
