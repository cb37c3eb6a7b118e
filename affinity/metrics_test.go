package affinity

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetrics: the collector reports this instance's and the pool's
// sessions, active users, weights, health and the counters of Assign,
// Move and kicks.
func TestMetrics(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	s := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	other := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	run(t, s, nil)
	run(t, other, nil)
	ctx := context.Background()
	_, l := assign(t, s, "warm-up")
	s.SessionEnd(ctx, l)
	c0 := s.Counts()

	alice, la := session(t, s, "alice") // new
	_, again := assign(t, s, "alice")   // hit
	ended := make(chan struct{})
	go func() { // the gateway closes alice's session and her pending login when kicked
		<-la.Kicked()
		<-again.Kicked()
		s.SessionEnd(ctx, la)
		s.SessionEnd(ctx, again)
		close(ended)
	}()
	if _, err := s.Move(ctx, "alice", otherMember(alice)); err != nil {
		t.Fatal(err)
	}
	<-ended
	bob, lb := session(t, s, "bob") // new
	defer s.SessionEnd(ctx, lb)
	carol, lc := session(t, other, "carol") // on the other instance
	defer other.SessionEnd(ctx, lc)
	if err := s.SetWeight(ctx, "m2", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHealth(ctx, "m3", false); err != nil {
		t.Fatal(err)
	}

	per := func(name string, v func(m string) int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "# HELP pipegate_affinity_%s x\n# TYPE pipegate_affinity_%s gauge\n", name, name)
		for _, m := range threeMembers {
			fmt.Fprintf(&b, "pipegate_affinity_%s{member=%q,pool=%q} %d\n", name, m.Name, pool, v(m.Name))
		}
		return b.String()
	}
	count := func(members ...string) func(string) int {
		return func(m string) int {
			n := 0
			for _, x := range members {
				if x == m {
					n++
				}
			}
			return n
		}
	}
	want := per("sessions", count(bob)) +
		per("pool_sessions", count(bob, carol)) +
		per("users", count(bob, carol)) +
		per("weight", func(m string) int { return map[string]int{"m1": 1, "m2": 0, "m3": 1}[m] }) +
		per("member_up", func(m string) int { return map[string]int{"m1": 1, "m2": 1, "m3": 0}[m] }) +
		fmt.Sprintf(`# HELP pipegate_affinity_assignments_total x
# TYPE pipegate_affinity_assignments_total counter
pipegate_affinity_assignments_total{pool=%[1]q,result="hit"} %[2]d
pipegate_affinity_assignments_total{pool=%[1]q,result="new"} %[3]d
pipegate_affinity_assignments_total{pool=%[1]q,result="unavailable"} %[4]d
# HELP pipegate_affinity_moves_total x
# TYPE pipegate_affinity_moves_total counter
pipegate_affinity_moves_total{pool=%[1]q} 1
# HELP pipegate_affinity_kicks_total x
# TYPE pipegate_affinity_kicks_total counter
pipegate_affinity_kicks_total{pool=%[1]q} 2
# HELP pipegate_affinity_store_up x
# TYPE pipegate_affinity_store_up gauge
pipegate_affinity_store_up{pool=%[1]q} 1
`, pool, c0.Hits+1, c0.New+2, c0.Unavailable)
	// The HELP texts are not what is tested: take them from the collector.
	col := s.Collector()
	want = withHelp(want)
	names := []string{"sessions", "pool_sessions", "users", "weight", "member_up",
		"assignments_total", "moves_total", "kicks_total", "store_up"}
	for i := range names {
		names[i] = "pipegate_affinity_" + names[i]
	}
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(col); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	// Two pools register side by side.
	reg := prometheus.NewRegistry()
	p2 := newStore(t, newClient(t, redisSrv.Addr), testPool(t), nil)
	if err := reg.Register(col); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(p2.Collector()); err != nil {
		t.Fatalf("second pool: %v", err)
	}
}

// withHelp replaces the "x" HELP lines of want with the collector's.
func withHelp(want string) string {
	for name, help := range metricHelp {
		want = strings.ReplaceAll(want, "# HELP pipegate_affinity_"+name+" x\n", "# HELP pipegate_affinity_"+name+" "+help+"\n")
	}
	return want
}

// TestMetricsRedisDown: without Redis a scrape reports this instance's
// figures and store_up 0, and fails nothing.
func TestMetricsRedisDown(t *testing.T) {
	s := newStore(t, newClient(t, "127.0.0.1:1"), testPool(t), nil)
	want := fmt.Sprintf(`# HELP pipegate_affinity_store_up 1 if Redis answered this scrape's reads, else 0.
# TYPE pipegate_affinity_store_up gauge
pipegate_affinity_store_up{pool=%q} 0
`, s.Pool())
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want), "pipegate_affinity_store_up"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(s.Collector(), "pipegate_affinity_sessions", "pipegate_affinity_pool_sessions"); n != 3 {
		t.Fatalf("%d session metrics without Redis; want this instance's 3", n)
	}
}
