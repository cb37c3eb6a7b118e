package affinity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// MoveResult says what a move did.
type MoveResult struct {
	User, From, To string
	Instances      int  // instances alive when the move began
	Confirmed      int  // of them, how many confirmed the kick
	TimedOut       bool // the kick delay passed first
}

// Move reassigns user to member to ("" = the ring's choice without the
// current member). Meanwhile Assign and SessionStart of the user fail with
// ErrMoving on every instance, so no new session reaches either member.
// It kicks the user's sessions on every instance, waits until each
// instance alive at the start confirmed or the kick delay passed, and then
// writes the new member. A user without an assignment is simply assigned.
func (s *Store) Move(ctx context.Context, user, to string) (MoveResult, error) {
	user = UserKey(user)
	r := MoveResult{User: user, To: to}
	if _, ok := s.member[to]; to != "" && !ok {
		return r, fmt.Errorf("affinity: move %q: %q is not a member of pool %q", user, to, s.cfg.Pool)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	move := hex.EncodeToString(b[:])
	uk := s.k.user(user)
	deadline := s.moveDeadline()
	res, err := scriptMoveBegin.Run(ctx, s.rdb, []string{uk, s.k.inst()}, ms(deadline), move).Slice()
	if err != nil {
		return r, unavailable("move", user, err)
	}
	if res[0] == "moving" {
		return r, fmt.Errorf("%w: %q: another move runs", ErrMoving, user)
	}
	r.From = res[1].(string)
	live, _ := res[2].([]interface{})
	r.Instances = len(live)
	expect := make(map[string]bool, len(live))
	for _, id := range live {
		expect[id.(string)] = true
	}
	if r.From != "" { // nobody holds a session of an unassigned user
		err = s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.k.kicks(), MaxLen: kickStreamLen, Approx: true,
			Values: []interface{}{"id", move, "u", user}}).Err()
		if err != nil {
			return r, unavailable("kick", user, err)
		}
		r.Confirmed, r.TimedOut, err = s.awaitAcks(ctx, move, expect)
		if err != nil {
			return r, fmt.Errorf("affinity: move %q: wait for kicks: %w", user, err)
		}
		// The proxies closed their connections; the old member's
		// processes may still be writing the user's mail (Director's
		// kick delay had the same purpose).
		select {
		case <-time.After(s.cfg.Settle):
		case <-ctx.Done():
			return r, fmt.Errorf("affinity: move %q: %w", user, ctx.Err())
		}
	}
	if to == "" {
		if to, err = s.pick(ctx, user, r.From); err != nil {
			return r, fmt.Errorf("affinity: move %q from %q: %w", user, r.From, err)
		}
		r.To = to
	}
	res2, err := scriptMoveEnd.Run(ctx, s.rdb, []string{uk, s.k.inst()}, move, to, ms(s.cfg.Expire)).Text()
	if err != nil {
		return r, unavailable("finish move", user, err)
	}
	switch res2 {
	case "ok":
	case "expired":
		return r, fmt.Errorf("affinity: move %q to %q: took longer than %v and was dropped", user, to, deadline)
	default:
		return r, fmt.Errorf("affinity: move %q to %q: dropped, another move took over after %v", user, to, deadline)
	}
	s.stats.moves.Add(1)
	return r, nil
}

// moveDeadline bounds a whole move in Redis, should the mover die: the
// kick delay, the settle delay, and room for the rest (the ring's pick,
// round trips). A mover still at work past it finds its move dropped.
func (s *Store) moveDeadline() time.Duration {
	return 2*s.cfg.KickDelay + max(s.cfg.Settle, 0) + 5*time.Second
}

// ackPoll bounds one blocking wait for a confirmation.
const ackPoll = 250 * time.Millisecond

// awaitAcks collects the confirmations of the expected instances until all
// came or the kick delay passed.
func (s *Store) awaitAcks(ctx context.Context, move string, expect map[string]bool) (confirmed int, timedOut bool, err error) {
	defer s.rdb.Del(context.WithoutCancel(ctx), s.k.ack(move))
	end := time.Now().Add(s.cfg.KickDelay)
	for confirmed < len(expect) {
		left := time.Until(end)
		if left <= 0 {
			return confirmed, true, nil
		}
		// In slices shorter than any sane ReadTimeout of the client (go-redis's
		// BLPop rounds up to whole seconds); BLPOP's 0 would mean forever.
		wait := min(max(left, time.Millisecond), ackPoll)
		v, err := s.rdb.Do(ctx, "BLPOP", s.k.ack(move), strconv.FormatFloat(wait.Seconds(), 'f', 3, 64)).StringSlice()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return confirmed, false, err
		}
		if expect[v[1]] {
			expect[v[1]] = false
			confirmed++
		}
	}
	return confirmed, false, nil
}

// SetWeight sets member's weight for every instance of the pool: 0 drains
// it (its users stay until their assignment expires or they are moved; no
// new ones come); weight < 0 returns it to the configured weight; more
// than MaxWeight is an error.
func (s *Store) SetWeight(ctx context.Context, member string, weight int) error {
	if _, ok := s.member[member]; !ok {
		return fmt.Errorf("affinity: set weight: %q is not a member of pool %q", member, s.cfg.Pool)
	}
	if weight > MaxWeight {
		return fmt.Errorf("affinity: set weight of member %q: %d: want 0 to %d, or below 0 for the configured weight", member, weight, MaxWeight)
	}
	var err error
	if weight < 0 {
		err = s.rdb.HDel(ctx, s.k.weight(), member).Err()
	} else {
		err = s.rdb.HSet(ctx, s.k.weight(), member, weight).Err()
	}
	if err != nil {
		return unavailable("set weight of member", member, err)
	}
	return nil
}

// SetHealth marks member up or down for every instance: a member that is
// down takes no new users, and its idle users are reassigned at their next
// login (users with live sessions stay: never two members at once). The
// health checker (with its hysteresis) calls it.
func (s *Store) SetHealth(ctx context.Context, member string, healthy bool) error {
	if _, ok := s.member[member]; !ok {
		return fmt.Errorf("affinity: set health: %q is not a member of pool %q", member, s.cfg.Pool)
	}
	var err error
	if healthy {
		err = s.rdb.SRem(ctx, s.k.down(), member).Err()
	} else {
		err = s.rdb.SAdd(ctx, s.k.down(), member).Err()
	}
	if err != nil {
		return unavailable("set health of member", member, err)
	}
	return nil
}

// evacuateWorkers bounds the moves an evacuation runs at once.
const evacuateWorkers = 16

// Evacuate drains member (weight 0) and moves each of its users to the
// ring's choice, kicking their sessions. It scans the pool's users (an
// admin operation: O(users)). It returns the moves done; on error, the
// moves done so far.
func (s *Store) Evacuate(ctx context.Context, member string) ([]MoveResult, error) {
	if err := s.SetWeight(ctx, member, 0); err != nil {
		return nil, err
	}
	return s.MoveUsers(ctx, member)
}

// MoveUsers moves each user assigned to member to the ring's choice,
// kicking their sessions, without draining it: what a gateway does when
// the health checks took the member out (its users would otherwise wait
// for their sessions there to end). It scans the pool's users (O(users)).
func (s *Store) MoveUsers(ctx context.Context, member string) ([]MoveResult, error) {
	users, err := s.usersOf(ctx, member)
	if err != nil {
		return nil, err
	}
	jobs := make(chan string)
	out := make(chan moveDone)
	for i := 0; i < min(evacuateWorkers, len(users)); i++ {
		go s.evacuateWorker(ctx, jobs, out)
	}
	go feedUsers(users, jobs)
	var moved []MoveResult
	var errs []error
	for range users {
		d := <-out
		if d.err != nil {
			errs = append(errs, d.err)
			continue
		}
		moved = append(moved, d.r)
	}
	return moved, errors.Join(errs...)
}

func feedUsers(users []string, jobs chan<- string) {
	defer close(jobs)
	for _, u := range users {
		jobs <- u
	}
}

func (s *Store) evacuateWorker(ctx context.Context, jobs <-chan string, out chan<- moveDone) {
	for u := range jobs {
		r, err := s.Move(ctx, u, "")
		out <- moveDone{r, err}
	}
}

type moveDone struct {
	r   MoveResult
	err error
}

// usersOf lists the users assigned to member.
func (s *Store) usersOf(ctx context.Context, member string) ([]string, error) {
	var users []string
	iter := s.rdb.Scan(ctx, 0, s.k.userPattern(), 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		cmds := make([]*redis.StringCmd, len(batch))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.HGet(ctx, k, "m")
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, k := range batch {
			if cmds[i].Val() == member {
				users = append(users, s.k.userName(k))
			}
		}
		batch = batch[:0]
		return nil
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return nil, unavailable("list users of member", member, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return nil, unavailable("list users of member", member, err)
	}
	if err := flush(); err != nil {
		return nil, unavailable("list users of member", member, err)
	}
	return users, nil
}
