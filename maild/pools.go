package maild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/route"
)

// sessionEndTimeout bounds telling Redis that a session ended; if it
// cannot be told, the instance corrects its counts at the next heartbeat.
const sessionEndTimeout = 5 * time.Second

// pools is the daemon's gateway.Pools: an affinity.Store per pools:
// entry, and each member's backend of every protocol.
type pools struct {
	log    *slog.Logger
	prefix string
	byName map[string]*pool
	ends   sync.WaitGroup // SessionEnd calls in flight
}

type pool struct {
	cfg     Pool
	client  *redis.Client
	store   *affinity.Store
	members map[string]PoolMember
}

// loginHold is how long a pool holds a user for a login in progress
// (affinity.Config.Lease): longer than any backend login can take here,
// which the backend timeout and the login timeout both bound, plus the
// time to count its session.
func loginHold(s Settings) time.Duration {
	dialogue := min(cmp.Or(s.LoginTimeout, gateway.DefaultLoginTimeout), cmp.Or(s.BackendTimeout, gateway.DefaultBackendTimeout))
	return max(affinity.DefaultLease, dialogue+sessionEndTimeout)
}

// newPools makes the stores of the checked pools; it connects to nothing.
// A login holds its user for hold (loginHold).
func newPools(ps []Pool, hold time.Duration, log *slog.Logger, prefix string) (*pools, error) {
	p := &pools{log: log, prefix: prefix, byName: map[string]*pool{}}
	for _, pc := range ps {
		client := limit.NewRedisClient(pc.Redis) // the login path waits: fail fast, never guess
		members := make([]affinity.Member, 0, len(pc.Members))
		byName := make(map[string]PoolMember, len(pc.Members))
		for _, m := range pc.Members {
			members = append(members, affinity.Member{Name: m.Name, Weight: m.Weight})
			byName[m.Name] = m
		}
		name := pc.Name
		store, err := affinity.New(affinity.Config{
			Client: client, Pool: name, Prefix: pc.Prefix, Members: members,
			Epsilon: pc.Epsilon, Expire: pc.Expire, KickDelay: pc.KickDelay, Instance: pc.Instance,
			Settle: pc.Settle, WarmUp: pc.WarmUp, OutageGrace: pc.OutageGrace, Lease: hold,
			OnError: func(err error) { log.Warn(prefix+"pool "+name+": affinity store", "err", err) },
		})
		if err != nil {
			client.Close()
			p.close()
			return nil, fmt.Errorf("pools.%s: %w", name, err)
		}
		p.byName[name] = &pool{cfg: pc, client: client, store: store, members: byName}
	}
	return p, nil
}

// Assign is gateway.Pools.Assign.
func (p *pools) Assign(ctx context.Context, name, user, protocol string) (route.Backend, gateway.Lease, error) {
	pl := p.byName[name]
	if pl == nil {
		return route.Backend{}, nil, fmt.Errorf("no pool %q in the config (pools: block)", name)
	}
	member, l, err := pl.store.Assign(ctx, user)
	if err != nil {
		return route.Backend{}, nil, err
	}
	lease := &poolLease{p: p, store: pl.store, l: l}
	b, ok := pl.members[member].Backends[protocol]
	if !ok {
		lease.End()
		return route.Backend{}, nil, fmt.Errorf("member %q has no %s backend", member, protocol)
	}
	return b, lease, nil
}

// run keeps every pool's instance joined (heartbeats, kicks) and runs
// the pools' health checks, each through a server of the probed protocol
// (newProber) made for it alone, until ctx ends.
func (p *pools) run(ctx context.Context, wg *sync.WaitGroup, newProber func(protocol string) Server) {
	for _, pl := range p.byName {
		wg.Add(1)
		go p.subscribe(ctx, wg, pl)
		if h := pl.cfg.Health; h != nil {
			wg.Add(1)
			go p.checkHealth(ctx, wg, pl, newProber(h.Protocol))
		}
	}
}

// waitJoined waits until every pool's instance has joined (its first
// heartbeat reached Redis), at most wait; it returns the names of those
// that have not.
func (p *pools) waitJoined(ctx context.Context, wait time.Duration) []string {
	t := time.NewTimer(wait)
	defer t.Stop()
	expired := false
	var late []string
	for name, pl := range p.byName {
		if !expired {
			select {
			case <-pl.store.Joined():
				continue
			case <-t.C:
				expired = true
			case <-ctx.Done():
				expired = true
			}
		}
		select {
		case <-pl.store.Joined():
		default:
			late = append(late, name)
		}
	}
	slices.Sort(late)
	return late
}

// checkHealth is the goroutine of a pool's health checks.
func (p *pools) checkHealth(ctx context.Context, wg *sync.WaitGroup, pl *pool, prober Server) {
	defer wg.Done()
	h := pl.cfg.Health
	name := pl.cfg.Name
	cfg := affinity.HealthConfig{
		Interval: h.Interval, Timeout: h.Timeout, Fall: h.Fall, Rise: h.Rise,
		OnChange: func(member string, healthy bool, err error) {
			if healthy {
				p.log.Info(p.prefix+"pool "+name+": member up", "member", member)
				return
			}
			if !h.MoveOnDown {
				p.log.Warn(p.prefix+"pool "+name+": member down, its users move once their sessions there end", "member", member, "err", err)
				return
			}
			p.log.Warn(p.prefix+"pool "+name+": member down, moving its users", "member", member, "err", err)
			wg.Add(1)
			go p.moveUsers(ctx, wg, pl, member)
		},
	}
	probe := func(ctx context.Context, member string) error {
		b, ok := pl.members[member].Backends[h.Protocol]
		if !ok {
			return fmt.Errorf("member %q has no %s backend", member, h.Protocol)
		}
		return prober.Probe(ctx, b, h.User, h.Password)
	}
	if err := pl.store.RunHealth(ctx, cfg, probe); err != nil && !errors.Is(err, context.Canceled) {
		p.log.Warn(p.prefix+"pool "+name+": health checks stopped", "err", err)
	}
}

// moveUsers is the goroutine moving a down member's users elsewhere
// (this instance's checks took it out: one instance does it).
func (p *pools) moveUsers(ctx context.Context, wg *sync.WaitGroup, pl *pool, member string) {
	defer wg.Done()
	moved, err := pl.store.MoveUsers(ctx, member)
	if err != nil {
		p.log.Warn(p.prefix+"pool "+pl.cfg.Name+": moving a down member's users", "member", member, "moved", len(moved), "err", err)
		return
	}
	p.log.Info(p.prefix+"pool "+pl.cfg.Name+": down member's users moved", "member", member, "moved", len(moved))
}

// stores are the pools' stores by name, for the admin API and metrics.
func (p *pools) stores() map[string]*affinity.Store {
	m := make(map[string]*affinity.Store, len(p.byName))
	for name, pl := range p.byName {
		m[name] = pl.store
	}
	return m
}

func (p *pools) subscribe(ctx context.Context, wg *sync.WaitGroup, pl *pool) {
	defer wg.Done()
	if err := pl.store.Subscribe(ctx, nil); err != nil && !errors.Is(err, context.Canceled) {
		p.log.Warn(p.prefix+"pool "+pl.cfg.Name+": affinity stopped", "err", err)
	}
}

// close waits for the session ends in flight and closes the Redis
// clients.
func (p *pools) close() error {
	p.ends.Wait()
	var errs []error
	for _, pl := range p.byName {
		errs = append(errs, pl.client.Close())
	}
	return errors.Join(errs...)
}

// poolLease is gateway.Lease over an affinity lease.
type poolLease struct {
	p     *pools
	store *affinity.Store
	l     *affinity.Lease
}

func (l *poolLease) Start(ctx context.Context) error { return l.store.SessionStart(ctx, l.l) }

// OnKick is gateway.Lease's: a move is gateway.ErrMoved, the loss of
// Redis the store's own error.
func (l *poolLease) OnKick(f func(cause error)) {
	l.l.OnKick(func() {
		cause := l.l.Cause()
		if errors.Is(cause, affinity.ErrMoving) {
			cause = fmt.Errorf("%w: %w", gateway.ErrMoved, cause)
		}
		f(cause)
	})
}

// End tells Redis on a goroutine of its own: the gateway calls it from a
// pipe's after-close callback, which must not wait for the network.
func (l *poolLease) End() {
	l.p.ends.Add(1)
	go l.end()
}

func (l *poolLease) end() {
	defer l.p.ends.Done()
	ctx, cancel := context.WithTimeout(context.Background(), sessionEndTimeout)
	defer cancel()
	_ = l.store.SessionEnd(ctx, l.l) // on failure the heartbeat corrects the counts
}
