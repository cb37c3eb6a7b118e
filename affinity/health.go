package affinity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Probe checks one member: nil means healthy. It must return once ctx is
// done (RunHealth gives it HealthConfig.Timeout). The gateway's probe
// connects, reads the greeting and logs in a test account (connect only
// when no account is configured).
type Probe func(ctx context.Context, member string) error

// Defaults for the zero fields of HealthConfig (HAProxy's inter, fall and
// rise, with a timeout that allows a slow login).
const (
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = 5 * time.Second
	DefaultHealthFall     = 3
	DefaultHealthRise     = 2
)

// HealthConfig tunes RunHealth; the zero value of a field takes its
// default. Give every instance of a pool the same values.
type HealthConfig struct {
	// Interval between two probes of a member, pool-wide: whatever the
	// number of instances, a member is probed about once per Interval.
	Interval time.Duration
	// Timeout bounds one probe.
	Timeout time.Duration
	// Fall consecutive failures take a member down; Rise consecutive
	// successes bring it back up. The counts are shared by the instances.
	Fall, Rise int
	// OnChange, if set, hears every change of a member's health that this
	// instance made (err is the probe's error when it went down).
	OnChange func(member string, healthy bool, err error)
}

func (c *HealthConfig) setDefaults() {
	setDefault(&c.Interval, DefaultHealthInterval)
	setDefault(&c.Timeout, DefaultHealthTimeout)
	if c.Fall <= 0 {
		c.Fall = DefaultHealthFall
	}
	if c.Rise <= 0 {
		c.Rise = DefaultHealthRise
	}
}

// MemberHealth is the shared health record of a member.
type MemberHealth struct {
	Up        bool      `json:"up"`
	Fails     int       `json:"fails"`                // consecutive failed probes
	OKs       int       `json:"oks"`                  // consecutive good probes
	LastError string    `json:"last_error,omitempty"` // of the last failed probe
	Checked   time.Time `json:"checked,omitzero"`     // last probe's end (Redis's clock)
}

// Health checking is shared: for each member a lock key ({pfx}hl:MEMBER)
// says who probes now and, after the probe, when the next one is due; the
// consecutive counts live in {pfx}hc:MEMBER (fail, ok, err, at), and the
// verdict in the down set that Assign reads. The result script changes the
// counts and the down set together, so instances never disagree on them.

func (k keys) healthLock(m string) string { return k.pfx + "hl:" + m }
func (k keys) health(m string) string     { return k.pfx + "hc:" + m }

// scriptProbeClaim takes the probe of a member.
// KEYS: lock. ARGV: owner, ms. → -1 (ours) | ms until the lock ends
var scriptProbeClaim = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
return redis.call('PTTL', KEYS[1])
`)

// scriptProbeResult counts a probe's outcome and applies the hysteresis;
// the lock then holds for the interval, so the next probe of any instance
// comes an interval after this one ended. A result whose lock was lost
// (the probe outlived it) is dropped: another instance probes meanwhile.
// KEYS: lock, health, down. ARGV: owner, member, ok '1'|'0', fall, rise,
// interval ms, error text.
// → {'stale'} | {'up'|'down', changed 0|1}
var scriptProbeResult = redis.NewScript(luaPrelude + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'stale'} end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local now = now_ms()
local down = redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1
local changed = 0
if ARGV[3] == '1' then
  local n = redis.call('HINCRBY', KEYS[2], 'ok', 1)
  redis.call('HSET', KEYS[2], 'fail', 0, 'at', now)
  if down and n >= tonumber(ARGV[5]) then
    redis.call('SREM', KEYS[3], ARGV[2]); down = false; changed = 1
  end
else
  local n = redis.call('HINCRBY', KEYS[2], 'fail', 1)
  redis.call('HSET', KEYS[2], 'ok', 0, 'at', now, 'err', ARGV[7])
  if not down and n >= tonumber(ARGV[4]) then
    redis.call('SADD', KEYS[3], ARGV[2]); down = true; changed = 1
  end
end
if down then return {'down', changed} end
return {'up', changed}
`)

// scriptProbeRelease gives up a probe that was cut short.
// KEYS: lock. ARGV: owner.
var scriptProbeRelease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// RunHealth checks the pool's members with probe until ctx is done, shared
// with the other instances that run it: each member is probed about once
// per cfg.Interval pool-wide, by whichever instance takes the turn. A
// member goes down after cfg.Fall consecutive failures and up again after
// cfg.Rise consecutive successes (counted across instances, so a flapping
// member does not bounce its users). A member that is down takes no new
// users, and its idle users are reassigned at their next login (Assign);
// users with a live session stay. Errors talking to Redis go to
// Config.OnError and are retried. It returns ctx's error.
func (s *Store) RunHealth(ctx context.Context, cfg HealthConfig, probe Probe) error {
	if probe == nil {
		return errors.New("affinity: RunHealth: nil probe")
	}
	cfg.setDefaults()
	var wg sync.WaitGroup
	for _, m := range s.cfg.Members {
		wg.Add(1)
		go s.healthLoop(ctx, &wg, cfg, probe, m.Name)
	}
	wg.Wait()
	return ctx.Err()
}

// healthLoop takes member's probe whenever its turn is free.
func (s *Store) healthLoop(ctx context.Context, wg *sync.WaitGroup, cfg HealthConfig, probe Probe, member string) {
	defer wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(s.healthTurn(ctx, cfg, probe, member))
	}
}

// healthTurn probes member if no other instance did within the interval,
// and returns how long to wait before trying again.
func (s *Store) healthTurn(ctx context.Context, cfg HealthConfig, probe Probe, member string) time.Duration {
	owner := s.Instance()
	lock := s.k.healthLock(member)
	left, err := scriptProbeClaim.Run(ctx, s.rdb, []string{lock}, owner, ms(cfg.Timeout+cfg.Interval)).Int64()
	if err != nil {
		if ctx.Err() == nil {
			s.report(fmt.Errorf("affinity: health of member %q in pool %q: take the probe: %w", member, s.cfg.Pool, err))
		}
		return cfg.Interval
	}
	if left >= 0 { // another instance probes, or probed within the interval
		return min(max(time.Duration(left)*time.Millisecond, time.Millisecond), cfg.Interval)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	perr := probe(pctx, member)
	cancel()
	if ctx.Err() != nil { // stopping: the outcome says nothing of the member
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = scriptProbeRelease.Run(rctx, s.rdb, []string{lock}, owner).Err()
		return cfg.Interval
	}
	ok, text := "1", ""
	if perr != nil {
		ok, text = "0", perr.Error()
	}
	res, err := scriptProbeResult.Run(ctx, s.rdb, []string{lock, s.k.health(member), s.k.down()},
		owner, member, ok, cfg.Fall, cfg.Rise, ms(cfg.Interval), text).Slice()
	if err != nil {
		if ctx.Err() == nil {
			s.report(fmt.Errorf("affinity: health of member %q in pool %q: record the probe: %w", member, s.cfg.Pool, err))
		}
		return cfg.Interval
	}
	if len(res) == 2 && res[1] == int64(1) {
		up := res[0] == "up"
		if up {
			perr = nil
		}
		if cfg.OnChange != nil {
			cfg.OnChange(member, up, perr)
		}
	}
	return cfg.Interval
}

// Health returns the shared health record of every configured member.
func (s *Store) Health(ctx context.Context) (map[string]MemberHealth, error) {
	hs := make([]*redis.MapStringStringCmd, len(s.cfg.Members))
	var down *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range s.cfg.Members {
			hs[i] = p.HGetAll(ctx, s.k.health(m.Name))
		}
		down = p.SMembers(ctx, s.k.down())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: read health of pool %q: %v", ErrUnavailable, s.cfg.Pool, err)
	}
	isDown := make(map[string]bool)
	for _, m := range down.Val() {
		isDown[m] = true
	}
	out := make(map[string]MemberHealth, len(s.cfg.Members))
	for i, m := range s.cfg.Members {
		h := hs[i].Val()
		mh := MemberHealth{Up: !isDown[m.Name], LastError: h["err"]}
		mh.Fails, _ = strconv.Atoi(h["fail"])
		mh.OKs, _ = strconv.Atoi(h["ok"])
		if at, err := strconv.ParseInt(h["at"], 10, 64); err == nil {
			mh.Checked = time.UnixMilli(at)
		}
		if mh.Fails == 0 {
			mh.LastError = ""
		}
		out[m.Name] = mh
	}
	return out, nil
}
