package affinity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// stats are one instance's counters of a pool.
type stats struct {
	hit, assigned, unavailable atomic.Uint64 // Assign's outcomes
	moves                      atomic.Uint64 // moves finished by this instance
	kicks                      atomic.Uint64 // leases kicked here
}

// Counts is a snapshot of this instance's counters of a pool.
type Counts struct {
	Hits        uint64 // Assign kept an existing assignment
	New         uint64 // Assign made a new one (new user, or reassigned)
	Unavailable uint64 // Assign failed (Redis, moving, no member)
	Moves       uint64 // moves this instance finished
	Kicks       uint64 // logins and sessions kicked here by moves
}

// Counts returns this instance's counters.
func (s *Store) Counts() Counts {
	return Counts{
		Hits: s.stats.hit.Load(), New: s.stats.assigned.Load(), Unavailable: s.stats.unavailable.Load(),
		Moves: s.stats.moves.Load(), Kicks: s.stats.kicks.Load(),
	}
}

// usersCacheTTL is how long a count of active users is shared before an
// instance counts again: whatever the number of instances and scrapes,
// the pool's indexes are read at most about once per usersCacheTTL.
const usersCacheTTL = 15 * time.Second

// maxCountedUsers bounds one count of active users.
const maxCountedUsers = 1 << 20

func (k keys) usersCount() string { return k.pfx + "nusers" }

// scriptLive lists the live instances. KEYS: inst.
var scriptLive = redis.NewScript(luaPrelude + `
return redis.call('ZRANGEBYSCORE', KEYS[1], now_ms(), '+inf')
`)

// ActiveUsers returns, by member, the users that hold a live session on
// any instance. The count reads every live instance's index (O(active
// users), in batches that do not block Redis) and is shared through Redis
// for up to 15s, so it may lag that much.
func (s *Store) ActiveUsers(ctx context.Context) (map[string]int, error) {
	cached, err := s.rdb.HGetAll(ctx, s.k.usersCount()).Result()
	if err != nil {
		return nil, unavailable("count users of pool", s.cfg.Pool, err)
	}
	out := make(map[string]int)
	if _, ok := cached[""]; ok { // "" marks a count (no member is named "")
		for m, v := range cached {
			if n, err := strconv.Atoi(v); m != "" && err == nil {
				out[m] = n
			}
		}
		return out, nil
	}
	if err := s.countUsers(ctx, out); err != nil {
		return nil, unavailable("count users of pool", s.cfg.Pool, err)
	}
	args := []interface{}{"", 1}
	for m, n := range out {
		args = append(args, m, n)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.k.usersCount())
		p.HSet(ctx, s.k.usersCount(), args...)
		p.PExpire(ctx, s.k.usersCount(), usersCacheTTL)
		return nil
	})
	if err != nil {
		return nil, unavailable("share user count of pool", s.cfg.Pool, err)
	}
	return out, nil
}

// countUsers counts the distinct users of the live instances' indexes by
// their member into out.
func (s *Store) countUsers(ctx context.Context, out map[string]int) error {
	live, err := scriptLive.Run(ctx, s.rdb, []string{s.k.inst()}).StringSlice()
	if err != nil {
		return err
	}
	seen := make(map[string]struct{})
	for _, id := range live {
		iter := s.rdb.SScan(ctx, s.k.index(id), 0, "", 1000).Iterator()
		var batch []string
		for iter.Next(ctx) && len(seen) < maxCountedUsers {
			u := iter.Val()
			if _, dup := seen[u]; dup {
				continue
			}
			seen[u] = struct{}{}
			if batch = append(batch, u); len(batch) == 1000 {
				if err := s.countBatch(ctx, batch, out); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if err := s.countBatch(ctx, batch, out); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) countBatch(ctx context.Context, users []string, out map[string]int) error {
	if len(users) == 0 {
		return nil
	}
	cmds := make([]*redis.StringCmd, len(users))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			cmds[i] = p.HGet(ctx, s.k.user(u), "m")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for _, c := range cmds {
		if m := c.Val(); m != "" {
			out[m]++
		}
	}
	return nil
}

// collectTimeout bounds the Redis reads of one scrape.
const collectTimeout = 2 * time.Second

// Collector returns a Prometheus collector of the pool as this instance
// sees it; every metric carries the label pool. Register one per Store.
// A scrape reads Redis (a few round trips, bounded by 2s); when Redis does
// not answer, only this instance's figures are reported and
// pipegate_affinity_store_up is 0.
func (s *Store) Collector() prometheus.Collector {
	pool := prometheus.Labels{"pool": s.cfg.Pool}
	d := func(name string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("pipegate_affinity_"+name, metricHelp[name], labels, pool)
	}
	return &collector{s: s,
		sessions:     d("sessions", "member"),
		poolSessions: d("pool_sessions", "member"),
		users:        d("users", "member"),
		weight:       d("weight", "member"),
		up:           d("member_up", "member"),
		fails:        d("health_failures", "member"),
		assignments:  d("assignments_total", "result"),
		moves:        d("moves_total"),
		kicks:        d("kicks_total"),
		storeUp:      d("store_up"),
	}
}

// metricHelp is the help text of each metric (pipegate_affinity_NAME).
var metricHelp = map[string]string{
	"sessions":          "Sessions this instance holds, by member.",
	"pool_sessions":     "Live sessions of all instances, by member.",
	"users":             "Users with a live session on any instance, by member (shared count, up to 15s old).",
	"weight":            "Weight of the member for new users (0: drained).",
	"member_up":         "Health of the member: 1 up, 0 down (takes no new users).",
	"health_failures":   "Consecutive failed health probes of the member.",
	"assignments_total": "Assign calls on this instance by result: hit (existing assignment), new, unavailable (refused).",
	"moves_total":       "Moves of users finished by this instance.",
	"kicks_total":       "Logins and sessions on this instance kicked by moves, or closed when its heartbeats stopped reaching Redis.",
	"store_up":          "1 if Redis answered this scrape's reads, else 0.",
}

type collector struct {
	s                                                *Store
	sessions, poolSessions, users, weight, up, fails *prometheus.Desc
	assignments, moves, kicks, storeUp               *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sessions, c.poolSessions, c.users, c.weight, c.up, c.fails,
		c.assignments, c.moves, c.kicks, c.storeUp} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	s.mu.Lock()
	local := make(map[string]int, len(s.loads))
	for m, n := range s.loads {
		local[m] = n
	}
	s.mu.Unlock()
	n := s.Counts()
	for _, m := range s.cfg.Members {
		gauge(c.sessions, float64(local[m.Name]), m.Name)
	}
	counter(c.assignments, n.Hits, "hit")
	counter(c.assignments, n.New, "new")
	counter(c.assignments, n.Unavailable, "unavailable")
	counter(c.moves, n.Moves)
	counter(c.kicks, n.Kicks)

	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	err := c.collectShared(ctx, gauge)
	if err != nil {
		s.report(fmt.Errorf("affinity: metrics of pool %q: %w", s.cfg.Pool, err))
		gauge(c.storeUp, 0)
		return
	}
	gauge(c.storeUp, 1)
}

// collectShared reports the pool-wide figures; on an error it reports
// none (a partial set would read as zeros).
func (c *collector) collectShared(ctx context.Context, gauge func(*prometheus.Desc, float64, ...string)) error {
	s := c.s
	loads, weights, _, err := s.Loads(ctx)
	if err != nil {
		return err
	}
	health, err := s.Health(ctx)
	if err != nil {
		return err
	}
	users, err := s.ActiveUsers(ctx)
	if err != nil {
		return err
	}
	for _, m := range s.cfg.Members {
		gauge(c.poolSessions, float64(loads[m.Name]), m.Name)
		gauge(c.users, float64(users[m.Name]), m.Name)
		gauge(c.weight, float64(weights[m.Name]), m.Name)
		h := health[m.Name]
		gauge(c.up, b2f(h.Up), m.Name)
		gauge(c.fails, float64(h.Fails), m.Name)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
