package affinity

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Assign returns the member that user's new session must go to, and a
// lease to pass to SessionStart once the login succeeded and to
// SessionEnd when the connection is gone (always, whatever happened).
//
// A live assignment costs one round trip to Redis. Without one (new user,
// expired, or assigned to a member that is unhealthy or gone while the
// user has no session), the member is picked on the ring with bounded
// loads and written atomically: of several instances racing for one new
// user, one wins and the others get its member.
//
// Any error means "do not let this login through" (answer UNAVAILABLE):
// ErrMoving while a move runs, ErrUnavailable when Redis cannot be asked,
// ErrNoMember when every member is drained or down.
func (s *Store) Assign(ctx context.Context, user string) (member string, lease *Lease, err error) {
	user = UserKey(user)
	l := s.addLease(user)
	defer func() {
		if err != nil {
			s.release(ctx, l)
		}
	}()
	member, err = s.assign(ctx, l)
	if err != nil {
		s.stats.unavailable.Add(1)
		return "", nil, err
	}
	select {
	case <-l.kicked: // a move began while we asked
		s.stats.unavailable.Add(1)
		return "", nil, fmt.Errorf("%w: %q", ErrMoving, user)
	default:
	}
	s.mu.Lock()
	l.member = member
	s.mu.Unlock()
	return member, l, nil
}

// assign asks Redis for l's member; once it answered with one, the login
// is recorded there under l.login.
func (s *Store) assign(ctx context.Context, l *Lease) (string, error) {
	user := l.user
	uk := s.k.user(user)
	res, err := scriptAssign.Run(ctx, s.rdb, []string{uk, s.k.inst(), s.k.down()}, ms(s.cfg.Lease), l.login).Slice()
	if err != nil {
		return "", unavailable("assign", user, err)
	}
	old := ""
	switch res[0] {
	case "moving":
		return "", fmt.Errorf("%w: %q", ErrMoving, user)
	case "hit":
		m, live, down := res[1].(string), res[2].(int64), res[3].(int64)
		_, known := s.member[m]
		l.recorded = live > 0 || down == 0
		if live > 0 {
			if !known {
				return "", fmt.Errorf("%w: %q is assigned to %q, not a member of pool %q here", ErrUnavailable, user, m, s.cfg.Pool)
			}
			s.stats.hit.Add(1)
			return m, nil // never split a user with live sessions or logins, even from a sick member
		}
		if known && down == 0 {
			s.stats.hit.Add(1)
			return m, nil
		}
		old = m // idle on a member that is down or gone: reassign
	}
	pick, err := s.pick(ctx, user, "")
	if err != nil {
		return "", err
	}
	res, err = scriptClaim.Run(ctx, s.rdb, []string{uk, s.k.inst(), s.k.epoch()},
		pick, old, ms(s.cfg.Expire), ms(s.cfg.WarmUp), ms(s.cfg.Lease), l.login).Slice()
	if err != nil {
		return "", unavailable("claim", user, err)
	}
	switch res[0] {
	case "claimed":
		l.recorded = true
		s.stats.assigned.Add(1)
		return res[1].(string), nil
	case "hit":
		l.recorded = true
		s.stats.hit.Add(1)
		return res[1].(string), nil
	case "moving":
		return "", fmt.Errorf("%w: %q", ErrMoving, user)
	default: // warming
		return "", fmt.Errorf("%w: %q: the store is warming up after losing its data", ErrUnavailable, user)
	}
}

// MaxWeight bounds the weight overrides (SetWeight) that the admin API
// takes and that an instance reads back from the shared store: the ring
// holds VNodes points per unit of weight, and one unbounded override
// would make every instance build a ring it has not the memory for. An
// override read back outside 0 to MaxWeight is ignored: the configured
// weight holds.
const MaxWeight = 1000

// poolState is what a new assignment depends on.
type poolState struct {
	loads   map[string]int
	weights map[string]int // overrides by SetWeight
	down    map[string]bool
}

func (s *Store) state(ctx context.Context) (poolState, error) {
	res, err := scriptState.Run(ctx, s.rdb, []string{s.k.inst(), s.k.weight(), s.k.down()}, s.k.pfx).Slice()
	if err != nil {
		return poolState{}, err
	}
	return parseState(res)
}

// parseState reads scriptState's answer, written by every instance.
func parseState(res []interface{}) (poolState, error) {
	if len(res) != 3 {
		return poolState{}, fmt.Errorf("pool state: %d parts, want 3", len(res))
	}
	st := poolState{loads: map[string]int{}, weights: map[string]int{}, down: map[string]bool{}}
	loads, _ := res[0].([]interface{})
	for i := 0; i+1 < len(loads); i += 2 {
		name, _ := loads[i].(string)
		n, _ := loads[i+1].(int64)
		st.loads[name] = int(n)
	}
	weights, _ := res[1].([]interface{})
	for i := 0; i+1 < len(weights); i += 2 {
		name, _ := weights[i].(string)
		v, _ := weights[i+1].(string)
		if w, err := strconv.Atoi(v); err == nil && w >= 0 && w <= MaxWeight {
			st.weights[name] = w
		}
	}
	down, _ := res[2].([]interface{})
	for _, d := range down {
		name, _ := d.(string)
		st.down[name] = true
	}
	return st, nil
}

// pick chooses a member for user on the ring with the shared weights,
// health and loads, never exclude.
func (s *Store) pick(ctx context.Context, user, exclude string) (string, error) {
	st, err := s.state(ctx)
	if err != nil {
		return "", unavailable("read pool state for", user, err)
	}
	skip := func(name string) bool { return st.down[name] || name == exclude }
	m, ok := s.ringFor(st.weights).Pick(user, st.loads, skip, s.cfg.Epsilon)
	if !ok {
		return "", fmt.Errorf("%w: pool %q, user %q", ErrNoMember, s.cfg.Pool, user)
	}
	return m, nil
}

// ringFor returns the ring of the configured members with the overrides,
// rebuilt only when the weights changed.
func (s *Store) ringFor(overrides map[string]int) *Ring {
	members := make([]Member, len(s.cfg.Members))
	var sig strings.Builder
	for i, m := range s.cfg.Members {
		if w, ok := overrides[m.Name]; ok {
			m.Weight = w
		}
		members[i] = m
		fmt.Fprintf(&sig, "%d,", m.Weight)
	}
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	if s.ring == nil || s.ringSig != sig.String() {
		s.ring, s.ringSig = NewRing(members, s.cfg.VNodes), sig.String()
	}
	return s.ring
}
