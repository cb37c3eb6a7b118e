package affinity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/pipegate/pipegate/admin"
)

// The admin API (Handler) speaks JSON; these are its answers.

// UserInfo answers GET /affinity: a user's assignment.
type UserInfo struct {
	Pool     string         `json:"pool"`
	User     string         `json:"user"`             // as the assignment is kept: UserKey, lower-cased
	Member   string         `json:"member,omitempty"` // "" = not assigned
	Moving   bool           `json:"moving"`
	Sessions map[string]int `json:"sessions,omitempty"` // by instance
	Logins   int            `json:"logins,omitempty"`   // in progress, on any instance: they hold the member too
	// TTL and Expires are set while no session holds the assignment.
	TTL     string    `json:"ttl,omitempty"` // Go duration
	Expires time.Time `json:"expires,omitzero"`
}

// PoolInfo is one pool in GET /affinity/pools.
type PoolInfo struct {
	Pool    string       `json:"pool"`
	Members []MemberInfo `json:"members"`
}

// MemberInfo is one member of a PoolInfo.
type MemberInfo struct {
	Name             string       `json:"name"`
	Weight           int          `json:"weight"` // in force (0: drained)
	ConfiguredWeight int          `json:"configured_weight"`
	Up               bool         `json:"up"`
	Sessions         int          `json:"sessions"` // live, all instances
	Users            int          `json:"users"`    // with a live session (up to 15s old)
	Health           MemberHealth `json:"health"`
}

// MoveInfo answers POST /affinity/move (and lists the moves of an
// evacuation).
type MoveInfo struct {
	Pool      string `json:"pool"`
	User      string `json:"user"`
	From      string `json:"from"` // "" = was not assigned
	To        string `json:"to"`
	Instances int    `json:"instances"` // alive when the move began
	Confirmed int    `json:"confirmed"` // of them, confirmed the kick
	TimedOut  bool   `json:"timed_out"`
}

// WeightInfo answers POST /affinity/weight.
type WeightInfo struct {
	Pool             string `json:"pool"`
	Member           string `json:"member"`
	Weight           int    `json:"weight"`
	ConfiguredWeight int    `json:"configured_weight"`
}

// EvacuateInfo answers POST /affinity/evacuate; Error is set (and the
// status is not 200) when some moves failed.
type EvacuateInfo struct {
	Pool   string     `json:"pool"`
	Member string     `json:"member"`
	Moved  []MoveInfo `json:"moved"`
	Error  string     `json:"error,omitempty"`
}

// APIError is the body of every error answer: 400 bad input (Field names
// it), 404 unknown pool or member, 409 the user is being moved, 503 Redis
// unavailable or no member can take users.
type APIError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// Handler serves the admin API of the pools (by name) under /affinity;
// mount it next to admin.Handler on the metrics listener:
//
//	GET  /affinity?pool=P&user=U    a user's assignment (UserInfo)
//	GET  /affinity/pools[?pool=P]   members, weights, health, loads ([]PoolInfo)
//	POST /affinity/move             {"pool","user","to"}: move a user ("to" omitted: the ring's choice)
//	POST /affinity/weight           {"pool","member","weight"}: 0 to MaxWeight; 0 drains, -1 restores the configured weight
//	POST /affinity/evacuate         {"pool","member"}: drain and move every user off the member
//
// pool may be omitted when there is one. Cross-origin browser requests
// are refused (http.CrossOriginProtection); the listener must still be
// internal: anyone who reaches it can move users.
func Handler(pools map[string]*Store) http.Handler {
	a := &api{pools: pools}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /affinity", a.user)
	mux.HandleFunc("GET /affinity/pools", a.listPools)
	mux.HandleFunc("POST /affinity/move", a.move)
	mux.HandleFunc("POST /affinity/weight", a.weight)
	mux.HandleFunc("POST /affinity/evacuate", a.evacuate)
	return http.NewCrossOriginProtection().Handler(mux)
}

type api struct{ pools map[string]*Store }

// httpError is an answer other than 200.
type httpError struct {
	code  int
	field string
	err   error
}

func (e *httpError) Error() string { return e.err.Error() }

func badInput(field, format string, args ...any) error {
	return &httpError{http.StatusBadRequest, field, fmt.Errorf(format, args...)}
}

func notFound(field, format string, args ...any) error {
	return &httpError{http.StatusNotFound, field, fmt.Errorf(format, args...)}
}

// status maps an error of the store to an HTTP status.
func status(err error) (int, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code, he.field
	case errors.Is(err, ErrMoving):
		return http.StatusConflict, ""
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrNoMember):
		return http.StatusServiceUnavailable, ""
	}
	return http.StatusInternalServerError, ""
}

func writeError(w http.ResponseWriter, err error) {
	code, field := status(err)
	admin.WriteJSON(w, code, APIError{Error: err.Error(), Field: field})
}

// pool finds the named pool; "" is the only one, if there is one.
func (a *api) pool(name string) (*Store, string, error) {
	if len(a.pools) == 0 {
		return nil, "", notFound("pool", "this instance has no pools (its config has no pools: block)")
	}
	if name == "" {
		if len(a.pools) != 1 {
			return nil, "", badInput("pool", "pool is required: there are %d pools", len(a.pools))
		}
		for n, s := range a.pools {
			return s, n, nil
		}
	}
	s, ok := a.pools[name]
	if !ok {
		return nil, "", notFound("pool", "no pool %q", name)
	}
	return s, name, nil
}

func (s *Store) configuredWeight(member string) (int, bool) {
	w, ok := s.member[member]
	return w, ok
}

func (a *api) user(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s, name, err := a.pool(q.Get("pool"))
	if err != nil {
		writeError(w, err)
		return
	}
	user := q.Get("user")
	if user == "" {
		writeError(w, badInput("user", "user is required"))
		return
	}
	as, err := s.Lookup(r.Context(), user)
	if err != nil {
		writeError(w, err)
		return
	}
	info := UserInfo{Pool: name, User: UserKey(user), Member: as.Member, Moving: as.Moving, Sessions: as.Sessions, Logins: as.Logins}
	if as.TTL > 0 {
		info.TTL = as.TTL.Round(time.Millisecond).String()
		info.Expires = time.Now().Add(as.TTL).UTC().Truncate(time.Millisecond)
	}
	admin.WriteJSON(w, http.StatusOK, info)
}

func (a *api) listPools(w http.ResponseWriter, r *http.Request) {
	var names []string
	if p := r.URL.Query().Get("pool"); p != "" {
		if _, ok := a.pools[p]; !ok {
			writeError(w, notFound("pool", "no pool %q", p))
			return
		}
		names = []string{p}
	} else {
		for n := range a.pools {
			names = append(names, n)
		}
		slices.Sort(names)
	}
	out := make([]PoolInfo, 0, len(names))
	for _, n := range names {
		info, err := a.pools[n].info(r.Context(), n)
		if err != nil {
			writeError(w, err)
			return
		}
		out = append(out, info)
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

// info is the pool's shared state for the admin API.
func (s *Store) info(ctx context.Context, name string) (PoolInfo, error) {
	loads, weights, _, err := s.Loads(ctx)
	if err != nil {
		return PoolInfo{}, err
	}
	health, err := s.Health(ctx)
	if err != nil {
		return PoolInfo{}, err
	}
	users, err := s.ActiveUsers(ctx)
	if err != nil {
		return PoolInfo{}, err
	}
	info := PoolInfo{Pool: name, Members: make([]MemberInfo, 0, len(s.cfg.Members))}
	for _, m := range s.cfg.Members {
		h := health[m.Name]
		info.Members = append(info.Members, MemberInfo{
			Name: m.Name, Weight: weights[m.Name], ConfiguredWeight: m.Weight, Up: h.Up,
			Sessions: loads[m.Name], Users: users[m.Name], Health: h,
		})
	}
	return info, nil
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// decode reads r's JSON body into v, refusing unknown fields and anything
// after the object (a second object's fields would be ignored).
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badInput("", "request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badInput("", "request body: more after the JSON object (at offset %d)", dec.InputOffset())
	}
	return nil
}

// member checks that member is one of s's, naming field when not.
func member(s *Store, pool, field, member string) error {
	if member == "" {
		return badInput(field, "%s is required", field)
	}
	if _, ok := s.member[member]; !ok {
		return notFound(field, "pool %q has no member %q", pool, member)
	}
	return nil
}

// poolMember is a.pool, then member for the request field "member".
func (a *api) poolMember(pool, m string) (*Store, string, error) {
	s, name, err := a.pool(pool)
	if err == nil {
		err = member(s, name, "member", m)
	}
	return s, name, err
}

func moveInfo(pool string, r MoveResult) MoveInfo {
	return MoveInfo{Pool: pool, User: r.User, From: r.From, To: r.To,
		Instances: r.Instances, Confirmed: r.Confirmed, TimedOut: r.TimedOut}
}

func (a *api) move(w http.ResponseWriter, r *http.Request) {
	var req struct{ Pool, User, To string }
	if err := decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	s, name, err := a.pool(req.Pool)
	if err == nil && req.User == "" {
		err = badInput("user", "user is required")
	}
	if err == nil && req.To != "" {
		err = member(s, name, "to", req.To)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	// A move is not left halfway because the client went away.
	res, err := s.Move(context.WithoutCancel(r.Context()), req.User, req.To)
	if err != nil {
		writeError(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, moveInfo(name, res))
}

func (a *api) weight(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Pool, Member string
		Weight       *int
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	s, name, err := a.poolMember(req.Pool, req.Member)
	if err == nil && req.Weight == nil {
		err = badInput("weight", "weight is required (0 drains, -1 restores the configured weight)")
	}
	if err == nil && (*req.Weight < -1 || *req.Weight > MaxWeight) {
		err = badInput("weight", "weight %d: want 0 to %d, or -1", *req.Weight, MaxWeight)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.SetWeight(r.Context(), req.Member, *req.Weight); err != nil {
		writeError(w, err)
		return
	}
	conf, _ := s.configuredWeight(req.Member)
	eff := *req.Weight
	if eff < 0 {
		eff = conf
	}
	admin.WriteJSON(w, http.StatusOK, WeightInfo{Pool: name, Member: req.Member, Weight: eff, ConfiguredWeight: conf})
}

func (a *api) evacuate(w http.ResponseWriter, r *http.Request) {
	var req struct{ Pool, Member string }
	if err := decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	s, name, err := a.poolMember(req.Pool, req.Member)
	if err != nil {
		writeError(w, err)
		return
	}
	moved, err := s.Evacuate(context.WithoutCancel(r.Context()), req.Member)
	info := EvacuateInfo{Pool: name, Member: req.Member, Moved: make([]MoveInfo, 0, len(moved))}
	for _, m := range moved {
		info.Moved = append(info.Moved, moveInfo(name, m))
	}
	code := http.StatusOK
	if err != nil {
		code, _ = status(err)
		info.Error = err.Error()
	}
	admin.WriteJSON(w, code, info)
}
