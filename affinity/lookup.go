package affinity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Assignment is the shared view of one user, for the admin API.
type Assignment struct {
	User     string         `json:"user"`
	Member   string         `json:"member,omitempty"` // "" = not assigned
	Moving   bool           `json:"moving,omitempty"`
	Sessions map[string]int `json:"sessions,omitempty"` // by instance, live or not yet swept
	TTL      time.Duration  `json:"ttl,omitempty"`      // 0 while sessions hold it (or unassigned)
	Logins   int            `json:"logins,omitempty"`   // logins in progress (between Assign and SessionStart)
}

// Lookup reads user's assignment (under UserKey(user), the name
// Assignment.User gives).
func (s *Store) Lookup(ctx context.Context, user string) (Assignment, error) {
	user = UserKey(user)
	a := Assignment{User: user}
	var h *redis.MapStringStringCmd
	var ttl *redis.DurationCmd
	var now *redis.TimeCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, s.k.user(user))
		ttl = p.PTTL(ctx, s.k.user(user))
		now = p.Time(ctx)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return a, unavailable("look up", user, err)
	}
	for f, v := range h.Val() {
		switch {
		case f == "m":
			a.Member = v
		case f == "v":
			dl, _ := strconv.ParseInt(v, 10, 64)
			a.Moving = dl > now.Val().UnixMilli()
		case strings.HasPrefix(f, "p:"):
			dl, _ := strconv.ParseInt(v, 10, 64)
			if dl > now.Val().UnixMilli() {
				a.Logins++
			}
		case strings.HasPrefix(f, "s:"):
			if a.Sessions == nil {
				a.Sessions = map[string]int{}
			}
			a.Sessions[f[2:]], _ = strconv.Atoi(v)
		}
	}
	if d := ttl.Val(); d > 0 {
		a.TTL = d
	}
	return a, nil
}

// Loads returns the live sessions by member, summed over the live
// instances, with the shared weight overrides and health: what the next
// new assignment will be decided on.
func (s *Store) Loads(ctx context.Context) (loads, weights map[string]int, down map[string]bool, err error) {
	st, err := s.state(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: read state of pool %q: %v", ErrUnavailable, s.cfg.Pool, err)
	}
	weights = make(map[string]int, len(s.cfg.Members))
	for _, m := range s.cfg.Members {
		weights[m.Name] = m.Weight
		if w, ok := st.weights[m.Name]; ok {
			weights[m.Name] = w
		}
	}
	return st.loads, weights, st.down, nil
}
