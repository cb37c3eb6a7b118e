package affinity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the zero fields of Config.
const (
	DefaultExpire    = 15 * time.Minute // Director's director_user_expire
	DefaultKickDelay = 2 * time.Second  // Director's kick delay
	DefaultSettle    = time.Second
	DefaultHeartbeat = 2 * time.Second
	DefaultLease     = time.Minute
	DefaultWarmUp    = 10 * time.Second
	DefaultPrefix    = "pipegate:affinity:"
	// DefaultOutageGrace covers a Redis restart or failover.
	DefaultOutageGrace = 30 * time.Second
)

// Errors. Any error from Assign means the gateway answers UNAVAILABLE
// (NO [UNAVAILABLE], -ERR [SYS/TEMP], 4xx): the store never guesses.
var (
	// ErrUnavailable: Redis cannot be reached, or is warming up after it
	// lost its data (instances are re-publishing their sessions).
	ErrUnavailable = errors.New("affinity: store unavailable")
	// ErrMoving: a move of the user runs; no member may take a session.
	ErrMoving = errors.New("affinity: user is being moved")
	// ErrNoMember: every member is draining or unhealthy.
	ErrNoMember = errors.New("affinity: no member can take new users")
	// ErrLost: SessionStart found the user assigned elsewhere (a move
	// finished while the login ran); the gateway closes the session.
	ErrLost = errors.New("affinity: assignment changed during login")
)

// Config of a Store. Client and Members are required; the zero value of
// every other field takes the default.
type Config struct {
	// Client talks to the Redis every instance shares. Give it short
	// timeouts and no retries (the login path waits for it), as
	// limit.NewRedisPenaltyStore does.
	Client redis.UniversalClient
	// Pool names the key space ({Prefix}{Pool}:...); one Redis can hold
	// several pools. The name is a Redis Cluster hash tag, so the keys of
	// one pool share a slot.
	Pool   string
	Prefix string // DefaultPrefix
	// Members of the pool with their configured weights; the same list
	// on every instance (the ring is computed by each instance).
	// SetWeight overrides a weight for every instance.
	Members []Member
	VNodes  int     // points per unit of weight; DefaultVNodes
	Epsilon float64 // bounded-load slack; DefaultEpsilon
	// Expire keeps an assignment this long after the user's last session
	// ended; DefaultExpire.
	Expire time.Duration
	// KickDelay bounds how long a move waits for the instances to confirm
	// that they closed the user's sessions; DefaultKickDelay.
	KickDelay time.Duration
	// Settle is how long a move waits, once the instances closed the
	// user's sessions, before the new member is used: time for the old
	// member's processes to finish writing. DefaultSettle; negative: 0.
	Settle time.Duration
	// Heartbeat is how often an instance says it is alive; it is counted
	// dead after 3 missed beats, and its sessions stop counting.
	Heartbeat time.Duration
	// Lease bounds how long a login between Assign and SessionStart holds
	// the user on its member, should SessionEnd never come (the instance
	// died): the backend login must take less; DefaultLease.
	Lease time.Duration
	// WarmUp is how long no new assignment is made after Redis lost its
	// data (a restart without persistence; also a fresh deployment), so
	// that the instances re-publish their live sessions first. It must
	// exceed a heartbeat plus the time an instance takes to reach Redis
	// again (go-redis's pool waits a second between dials once it saw
	// PoolSize failures); DefaultWarmUp. With a persistent Redis it
	// matters only at the first start.
	WarmUp time.Duration
	// OutageGrace is how long the sessions of an instance that no longer
	// reaches Redis go on, beyond two heartbeats; the other instances
	// count them for a heartbeat longer still, so that the instance has
	// closed them (Lease.Kicked) before any other may give their users to
	// another member. A Redis outage shorter than that leaves sessions
	// alone; the price is that the users of an instance that died stay on
	// their members (even one that is down) until its sessions stop
	// counting. DefaultOutageGrace; negative: none.
	OutageGrace time.Duration
	// Instance names this process in the store (random if empty); a
	// suffix is added each time it (re)joins.
	Instance string
	// OnError, if set, hears errors of the background work in Subscribe.
	OnError func(error)
}

// Store is one instance's handle on a pool's shared assignments. Make it
// with New, run Subscribe for its lifetime, and call Assign, SessionStart
// and SessionEnd around every login.
type Store struct {
	cfg    Config
	rdb    redis.UniversalClient
	k      keys
	member map[string]int // configured weight by name

	ringMu  sync.Mutex
	ring    *Ring
	ringSig string

	leaseSeq atomic.Uint64 // names the logins (Lease.login)

	mu     sync.Mutex
	base   string
	gen    int
	id     string // current instance id in the store
	joined bool
	joinCh chan struct{} // closed on the first successful heartbeat
	users  map[string]*local
	loads  map[string]int // this instance's started sessions by member
	dirty  map[string]struct{}
	fence  *time.Timer // fenceLocal, reset by each heartbeat that reached Redis

	stats stats // this instance's counters, for the metrics
}

// New checks cfg and returns a Store; it does not talk to Redis.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("affinity: Config.Client is nil")
	}
	if len(cfg.Members) == 0 {
		return nil, fmt.Errorf("affinity: pool %q: no members", cfg.Pool)
	}
	member := make(map[string]int, len(cfg.Members))
	for i, m := range cfg.Members {
		if m.Name == "" {
			return nil, fmt.Errorf("affinity: pool %q: member %d: empty name", cfg.Pool, i)
		}
		if m.Weight < 0 || m.Weight > MaxWeight {
			return nil, fmt.Errorf("affinity: pool %q: member %q: weight %d: want 0 to %d", cfg.Pool, m.Name, m.Weight, MaxWeight)
		}
		if _, dup := member[m.Name]; dup {
			return nil, fmt.Errorf("affinity: pool %q: member %q listed twice", cfg.Pool, m.Name)
		}
		member[m.Name] = m.Weight
	}
	if cfg.Epsilon < 0 {
		return nil, fmt.Errorf("affinity: pool %q: negative epsilon %v", cfg.Pool, cfg.Epsilon)
	}
	setDefault(&cfg.Expire, DefaultExpire)
	setDefault(&cfg.KickDelay, DefaultKickDelay)
	setDefaultOrNone(&cfg.Settle, DefaultSettle)
	setDefault(&cfg.Heartbeat, DefaultHeartbeat)
	setDefault(&cfg.Lease, DefaultLease)
	setDefault(&cfg.WarmUp, DefaultWarmUp)
	setDefaultOrNone(&cfg.OutageGrace, DefaultOutageGrace)
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Pool == "" {
		cfg.Pool = "default"
	}
	if cfg.Epsilon == 0 {
		cfg.Epsilon = DefaultEpsilon
	}
	base := cfg.Instance
	if base == "" {
		host, _ := os.Hostname()
		var b [6]byte
		_, _ = rand.Read(b[:])
		base = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	s := &Store{
		cfg:    cfg,
		rdb:    cfg.Client,
		k:      keys{pfx: cfg.Prefix + "{" + cfg.Pool + "}:"},
		member: member,
		base:   base,
		joinCh: make(chan struct{}),
		users:  make(map[string]*local),
		loads:  make(map[string]int),
		dirty:  make(map[string]struct{}),
	}
	s.id = s.base + ".1"
	s.gen = 1
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// setDefaultOrNone: 0 takes def, a negative duration none (0).
func setDefaultOrNone(d *time.Duration, def time.Duration) {
	switch {
	case *d == 0:
		*d = def
	case *d < 0:
		*d = 0
	}
}

// liveTTL is how long an instance (and so its sessions) counts as alive
// after a heartbeat.
func (s *Store) liveTTL() time.Duration { return 3*s.cfg.Heartbeat + s.cfg.OutageGrace }

// Instance returns the id under which this instance's sessions count now.
func (s *Store) Instance() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Pool returns the pool's name.
func (s *Store) Pool() string { return s.cfg.Pool }

// Members returns the configured members and weights (SetWeight's
// overrides are in Loads).
func (s *Store) Members() []Member { return append([]Member(nil), s.cfg.Members...) }

// Joined is closed once the instance is registered (the first heartbeat
// of Subscribe succeeded); SessionStart fails until then.
func (s *Store) Joined() <-chan struct{} { return s.joinCh }

// keys names the Redis keys of one pool.
type keys struct{ pfx string }

func (k keys) user(u string) string       { return k.pfx + "u:" + u }
func (k keys) inst() string               { return k.pfx + "inst" }
func (k keys) index(id string) string     { return k.pfx + "ix:" + id }
func (k keys) load(id string) string      { return k.pfx + "load:" + id }
func (k keys) weight() string             { return k.pfx + "weight" }
func (k keys) down() string               { return k.pfx + "down" }
func (k keys) epoch() string              { return k.pfx + "epoch" }
func (k keys) kicks() string              { return k.pfx + "kicks" }
func (k keys) ack(move string) string     { return k.pfx + "ack:" + move }
func (k keys) userPattern() string        { return k.pfx + "u:*" }
func (k keys) userName(key string) string { return key[len(k.pfx)+2:] }

func ms(d time.Duration) int64 { return d.Milliseconds() }

// unavailable wraps a Redis error as ErrUnavailable with what and who.
func unavailable(op, user string, err error) error {
	return fmt.Errorf("%w: %s %q: %v", ErrUnavailable, op, user, err)
}
