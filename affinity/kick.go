package affinity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kicks travel on a Redis stream rather than pub/sub: an instance that
// lost its connection for a moment reads the kicks it missed from where it
// stopped. The stream is capped (kickStreamLen); a mover waits for the
// confirmations (a list per move) of the instances alive when it began.

const kickStreamLen = 10000

// ackTTL bounds the life of a move's confirmation list.
const ackTTL = time.Minute

// followKicks reads the kick stream until ctx is done, handling each kick
// in its own goroutine.
func (s *Store) followKicks(ctx context.Context, wg *sync.WaitGroup, onKick func(string)) {
	last := ""
	for ctx.Err() == nil {
		if last == "" {
			// Start after the newest kick: older ones are not for us.
			msgs, err := s.rdb.XRevRangeN(ctx, s.k.kicks(), "+", "-", 1).Result()
			if err != nil {
				s.report(fmt.Errorf("affinity: read kick stream of pool %q: %w", s.cfg.Pool, err))
				waitRetry(ctx, s.cfg.Heartbeat)
				continue
			}
			last = "0-0"
			if len(msgs) > 0 {
				last = msgs[0].ID
			}
		}
		streams, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{s.k.kicks(), last}, Count: 100, Block: kickBlock}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				s.report(fmt.Errorf("affinity: read kick stream of pool %q: %w", s.cfg.Pool, err))
				waitRetry(ctx, s.cfg.Heartbeat)
			}
			continue
		}
		for _, st := range streams {
			for _, m := range st.Messages {
				last = m.ID
				move, _ := m.Values["id"].(string)
				user, _ := m.Values["u"].(string)
				wg.Add(1)
				go s.handleKick(ctx, wg, move, user, onKick)
			}
		}
	}
}

// waitRetry waits d or until ctx is done: a pause before retrying Redis.
func waitRetry(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handleKick ends user's leases here and confirms to the mover once they
// ended or the kick delay passed.
func (s *Store) handleKick(ctx context.Context, wg *sync.WaitGroup, move, user string, onKick func(string)) {
	defer wg.Done()
	empty := s.kickLocal(user)
	if empty != nil && onKick != nil {
		onKick(user)
	}
	if empty != nil {
		t := time.NewTimer(s.cfg.KickDelay)
		defer t.Stop()
		select {
		case <-empty:
		case <-t.C: // not closed in time: no confirmation, the mover times out
			s.report(fmt.Errorf("affinity: kick of %q (move %s) in pool %q: sessions still open after %v", user, move, s.cfg.Pool, s.cfg.KickDelay))
			return
		case <-ctx.Done():
			return
		}
	}
	if move == "" {
		return
	}
	id := s.Instance()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, s.k.ack(move), id)
		p.PExpire(ctx, s.k.ack(move), ackTTL)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.report(fmt.Errorf("affinity: confirm kick of %q (move %s) in pool %q: %w", user, move, s.cfg.Pool, err))
	}
}

// kickLocal closes the Kicked channel of user's leases here and returns a
// channel closed when they have all ended (nil if there were none).
func (s *Store) kickLocal(user string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.users[user]
	if e == nil {
		return nil
	}
	cause := fmt.Errorf("%w: %q", ErrMoving, user)
	for l := range e.leases {
		l.kick(cause)
	}
	s.stats.kicks.Add(uint64(len(e.leases)))
	return e.empty
}
