package affinity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// sweepBatch bounds the users one sweep script handles, so that a dead
// instance with many sessions does not block Redis.
const sweepBatch = 500

// resyncBatch bounds the users re-published in one pipeline.
const resyncBatch = 1000

// kickBlock bounds one blocking read of the kick stream, and so how long
// Subscribe takes to return after ctx is done.
const kickBlock = 500 * time.Millisecond

// Subscribe joins this instance to the pool and keeps it there until ctx
// is done: it heartbeats (its sessions count only while it does), sweeps
// the sessions of instances that died, re-publishes its own sessions
// after Redis lost them, and follows the kicks of moves. Should no
// heartbeat reach Redis for two heartbeat intervals plus
// Config.OutageGrace, it kicks every lease here, before the other
// instances count its sessions gone. For a kick of a
// user it closes the Kicked channel of the user's leases here, calls
// onKick(user) (may be nil; for a gateway that keeps its own registry),
// waits until the leases ended or the kick delay passed, and then
// confirms to the mover. It returns ctx's error; errors of the background
// work go to Config.OnError and are retried.
func (s *Store) Subscribe(ctx context.Context, onKick func(user string)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go s.heartbeatLoop(ctx, &wg)
	s.followKicks(ctx, &wg, onKick)
	return ctx.Err()
}

func (s *Store) report(err error) {
	if err != nil && s.cfg.OnError != nil {
		s.cfg.OnError(err)
	}
}

// heartbeatLoop beats every Config.Heartbeat until ctx is done.
func (s *Store) heartbeatLoop(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(s.cfg.Heartbeat)
	defer t.Stop()
	fence := time.AfterFunc(s.fenceAfter(), s.fenceLocal)
	s.mu.Lock()
	s.fence = fence
	s.mu.Unlock()
	defer func() {
		fence.Stop()
		s.mu.Lock()
		if s.fence == fence {
			s.fence = nil
		}
		s.mu.Unlock()
	}()
	for {
		s.report(s.beat(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat is one heartbeat: stay alive (or rejoin under a new id), publish
// this instance's loads, repair counts, sweep the dead.
func (s *Store) beat(ctx context.Context) error {
	s.mu.Lock()
	id, first := s.id, !s.joined
	s.mu.Unlock()
	start := time.Now()
	res, err := scriptHeartbeat.Run(ctx, s.rdb, []string{s.k.inst(), s.k.epoch()}, id, ms(s.liveTTL()), boolArg(first)).Text()
	if err != nil {
		return fmt.Errorf("affinity: heartbeat of %s in pool %q: %w", id, s.cfg.Pool, err)
	}
	if res == "rejoin" {
		s.rejoin()
		return s.beat(ctx)
	}
	s.mu.Lock()
	if s.fence != nil {
		s.fence.Reset(s.fenceAfter() - time.Since(start))
	}
	if !s.joined {
		s.joined = true
		select {
		case <-s.joinCh:
		default:
			close(s.joinCh)
		}
	}
	s.mu.Unlock()
	if err := s.publishLoads(ctx); err != nil {
		return err
	}
	if err := s.resync(ctx); err != nil {
		return err
	}
	return s.sweep(ctx)
}

// fenceAfter is how long an instance keeps its logins and sessions after
// the start of its last heartbeat that reached Redis: one heartbeat less
// than the other instances wait (liveTTL) before they count them gone and
// may give their users to another member. An instance cut off from Redis
// thus closes them before that can happen; with Redis down for all longer
// than that (Config.OutageGrace), the sessions close too: no instance can
// tell the two apart.
func (s *Store) fenceAfter() time.Duration { return s.liveTTL() - s.cfg.Heartbeat }

// fenceLocal kicks every lease of this instance: no heartbeat reached
// Redis for fenceAfter.
func (s *Store) fenceLocal() {
	s.mu.Lock()
	var ls []*Lease
	for _, e := range s.users {
		for l := range e.leases {
			ls = append(ls, l)
		}
	}
	s.mu.Unlock()
	if len(ls) == 0 {
		return
	}
	s.stats.kicks.Add(uint64(len(ls)))
	cause := fmt.Errorf("%w: pool %q: no heartbeat reached Redis for %v", ErrUnavailable, s.cfg.Pool, s.fenceAfter())
	s.report(fmt.Errorf("%w: %d logins and sessions here closed before other instances count them gone", cause, len(ls)))
	for _, l := range ls {
		l.kick(cause)
	}
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// rejoin takes a new instance id after this instance was counted dead or
// Redis lost its data: the old id is left to the sweepers, every session
// here is re-published under the new one.
func (s *Store) rejoin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.id = fmt.Sprintf("%s.%d", s.base, s.gen)
	s.joined = false
	for u := range s.users {
		s.dirty[u] = struct{}{}
	}
}

// publishLoads replaces this instance's per-member session counts with its
// own: whatever increments were lost, the shared loads converge here.
func (s *Store) publishLoads(ctx context.Context) error {
	s.mu.Lock()
	id := s.id
	args := make([]interface{}, 0, 2*len(s.loads))
	for m, n := range s.loads {
		args = append(args, m, n)
	}
	s.mu.Unlock()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.k.load(id))
		if len(args) > 0 {
			p.HSet(ctx, s.k.load(id), args...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("affinity: publish loads of %s in pool %q: %w", id, s.cfg.Pool, err)
	}
	return nil
}

// resync writes the absolute session counts of the users whose shared
// count may be wrong. A user now assigned elsewhere is kicked here.
func (s *Store) resync(ctx context.Context) error {
	for pass := 0; pass < 1000; pass++ {
		s.mu.Lock()
		id := s.id
		type row struct {
			user, member string
			n            int
		}
		var rows []row
		for u := range s.dirty {
			n, m := s.localCount(u)
			rows = append(rows, row{u, m, n})
			if len(rows) == resyncBatch {
				break
			}
		}
		s.mu.Unlock()
		if len(rows) == 0 {
			return nil
		}
		cmds := make([]*redis.Cmd, len(rows))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, r := range rows {
				cmds[i] = scriptResync.Eval(ctx, p, // EVAL: a pipeline cannot fall back from NOSCRIPT
					[]string{s.k.user(r.user), s.k.inst(), s.k.index(id)},
					id, r.member, r.user, r.n, ms(s.cfg.Expire))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("affinity: re-publish sessions of %s in pool %q: %w", id, s.cfg.Pool, err)
		}
		s.mu.Lock()
		for i, r := range rows {
			if n, _ := s.localCount(r.user); n == r.n && s.id == id {
				delete(s.dirty, r.user)
			}
			if cmds[i].Val() == "conflict" {
				for l := range s.users[r.user].leasesOrNil() {
					l.kick(fmt.Errorf("%w: %q is assigned to another member now", ErrMoving, r.user))
				}
			}
		}
		s.mu.Unlock()
	}
	return nil
}

func (e *local) leasesOrNil() map[*Lease]struct{} {
	if e == nil {
		return nil
	}
	return e.leases
}

// sweep removes the sessions of dead instances, a bounded amount per beat.
func (s *Store) sweep(ctx context.Context) error {
	for i := 0; i < 20; i++ {
		n, err := scriptSweep.Run(ctx, s.rdb, []string{s.k.inst()}, s.k.pfx, sweepBatch, ms(s.cfg.Expire)).Int()
		if err != nil {
			return fmt.Errorf("affinity: sweep dead instances of pool %q: %w", s.cfg.Pool, err)
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}
