package maild

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/internal/configerr"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/route"
)

// poolConfig is one entry of the file's pools: block: backends on shared
// storage whose users the gateway keeps on one member (docs/affinity.md).
type poolConfig struct {
	Members  []poolMember   `yaml:"members"`
	Affinity affinityConfig `yaml:"affinity"`
	Health   *healthConfig  `yaml:"health"`
}

// poolMember is a member: a backend URL (its name is then the URL's
// host:port), or a mapping with a name, a weight and the member's
// backend of each protocol.
type poolMember struct {
	Name     string         `yaml:"name"`
	Weight   *int           `yaml:"weight"`
	Backends []string       `yaml:"backends"`
	line     int            // of the member
	keys     map[string]int // line of each key of the long form
	lines    []int          // of Backends
}

// UnmarshalYAML reads "- imap://host:port" or a mapping. Errors are
// *yamlconf.NodeError.
func (m *poolMember) UnmarshalYAML(n *yaml.Node) error {
	m.line = n.Line
	if n.Kind == yaml.ScalarNode {
		m.Backends, m.lines = []string{n.Value}, []int{n.Line}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return yamlconf.NodeErrorf(n, "a member is a backend URL or a mapping (name, weight, backends)")
	}
	type plain poolMember
	if err := yamlconf.DecodeNode(n, (*plain)(m)); err != nil {
		return err
	}
	m.line = n.Line
	m.keys = map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		m.keys[n.Content[i].Value] = n.Content[i].Line
		if n.Content[i].Value == "backends" && n.Content[i+1].Kind == yaml.SequenceNode {
			for _, b := range n.Content[i+1].Content {
				m.lines = append(m.lines, b.Line)
			}
		}
	}
	return nil
}

type affinityConfig struct {
	Store         string            `yaml:"store"` // "redis", the only one (and the default)
	Redis         *yamlconf.Redis   `yaml:"redis"`
	Prefix        string            `yaml:"prefix"`
	Expire        yamlconf.Duration `yaml:"expire"`
	KickDelay     yamlconf.Duration `yaml:"kick_delay"`
	SettleDelay   yamlconf.Duration `yaml:"settle_delay"`
	WarmUp        yamlconf.Duration `yaml:"warm_up"`
	OutageGrace   yamlconf.Duration `yaml:"outage_grace"`
	BalanceFactor *float64          `yaml:"balance_factor"`
	Instance      string            `yaml:"instance"`
}

type healthConfig struct {
	Interval     yamlconf.Duration `yaml:"interval"`
	Timeout      yamlconf.Duration `yaml:"timeout"`
	Fall         int               `yaml:"fall"`
	Rise         int               `yaml:"rise"`
	Protocol     string            `yaml:"protocol"`
	OnDown       string            `yaml:"on_down"`
	User         string            `yaml:"user"`
	PasswordFile string            `yaml:"password_file"`
}

// Pool is a checked pools: entry.
type Pool struct {
	Name    string
	Members []PoolMember
	Redis   *redis.Options
	Prefix  string // "": affinity's default
	Expire  time.Duration
	// KickDelay, Epsilon and Instance: 0 or "" take affinity's defaults.
	KickDelay time.Duration
	// Settle, WarmUp and OutageGrace: affinity.Config's; 0 takes the
	// default, negative none.
	Settle, WarmUp, OutageGrace time.Duration
	Epsilon                     float64
	Instance                    string
	Health                      *PoolHealth // nil: no probes (members are taken as up)
}

// PoolMember is a member with its backend of each protocol.
type PoolMember struct {
	Name     string
	Weight   int
	Backends map[string]route.Backend // by protocol
}

// PoolHealth is a checked health: block of a pool.
type PoolHealth struct {
	Interval, Timeout time.Duration // 0: the defaults
	Fall, Rise        int           // 0: the defaults
	Protocol          string        // which of a member's backends is probed
	// MoveOnDown moves a member's users off it (kicking their sessions)
	// when the checks take it out (on_down: move, the default); else they
	// stay until their sessions there end (keep).
	MoveOnDown     bool
	User, Password string // "": connect and greeting only
}

// zeroIsNone is a duration written at key as affinity.Config takes it:
// "0s" written means none (-1), an absent key the default (0).
func (c *checker) zeroIsNone(key string, d time.Duration) time.Duration {
	if d == 0 && c.doc.Has(key) {
		return -1
	}
	return d
}

// pools checks the pools: block. routes_file is checked against it when
// the routes are opened (unknownPools); a route source naming a pool that
// is not configured makes its logins unavailable (logged: "the route
// names a pool and no pools are configured", or "no pool \"NAME\" in the
// config").
func (c *checker) pools(fc *fileConfig, s *Settings) {
	for _, name := range slices.Sorted(maps.Keys(fc.Pools)) {
		pc := fc.Pools[name]
		field := "pools." + name
		if !route.ValidPoolName(name) {
			c.errorf(field, "pool name %q: want letters, digits, '-' and '_'", name)
			continue
		}
		p := Pool{Name: name}
		if len(pc.Members) == 0 {
			c.errorf(field+".members", "missing: at least one member (- imap://10.0.0.11:143)")
		}
		names := map[string]string{}
		var protocols []string
		for i, m := range pc.Members {
			mf := fmt.Sprintf("%s.members[%d]", field, i)
			pm, ok := c.poolMember(mf, m)
			if !ok {
				continue
			}
			if prev, dup := names[pm.Name]; dup {
				c.errorAt(m.at("name"), mf+".name", "%q is also %s", pm.Name, prev)
				continue
			}
			names[pm.Name] = mf
			have := slices.Sorted(maps.Keys(pm.Backends))
			if protocols == nil {
				protocols = have
			} else if !slices.Equal(protocols, have) {
				// One user's sessions of every protocol go to one member:
				// each member must serve the same protocols.
				c.errorAt(m.at("backends"), mf+".backends", "serves %s, the first member %s: every member needs a backend of each protocol", strings.Join(have, ", "), strings.Join(protocols, ", "))
			}
			p.Members = append(p.Members, pm)
		}
		for _, l := range s.Listen {
			if len(protocols) > 0 && !slices.Contains(protocols, l.Protocol) {
				c.errorf(field+".members", "no member has a %s backend, and a listener serves %s (add it to each member's backends, or route %s elsewhere)", l.Protocol, l.Protocol, l.Protocol)
				break
			}
		}
		a := pc.Affinity
		if a.Store != "" && a.Store != "redis" {
			c.errorf(field+".affinity.store", "%q: unknown store (want redis)", a.Store)
		}
		if a.Redis == nil {
			c.errorf(field+".affinity.redis", "missing: the Redis every instance shares ({url: redis://127.0.0.1:6379/0})")
		} else {
			opts, err := a.Redis.Options(c.doc, field+".affinity.redis")
			c.errs.Add(err)
			p.Redis = opts
		}
		// Durations are never negative here (yamlconf.Duration refuses them).
		p.Prefix, p.Instance = a.Prefix, a.Instance
		p.Expire, p.KickDelay = a.Expire.Duration, a.KickDelay.Duration
		p.WarmUp = a.WarmUp.Duration
		p.Settle = c.zeroIsNone(field+".affinity.settle_delay", a.SettleDelay.Duration)      // "0s": no settling
		p.OutageGrace = c.zeroIsNone(field+".affinity.outage_grace", a.OutageGrace.Duration) // "0s": close two heartbeats into an outage
		if f := a.BalanceFactor; f != nil {
			if *f <= 0 || *f > 10 {
				c.errorf(field+".affinity.balance_factor", "%v: want more than 0 and at most 10 (0.25: no member above 1.25 times the average)", *f)
			}
			p.Epsilon = *f
		}
		if h := pc.Health; h != nil {
			p.Health = c.poolHealth(field+".health", h, protocols)
		}
		s.Pools = append(s.Pools, p)
	}
}

// at is the line of key in m (the member's own line for the short form
// or a key it lacks).
func (m poolMember) at(key string) int {
	if l, ok := m.keys[key]; ok {
		return l
	}
	return m.line
}

// errorAt adds a problem at a line the doc does not know (inside a value
// that decoded itself).
func (c *checker) errorAt(line int, field, format string, args ...any) {
	c.errs.Add(&configerr.Error{File: c.doc.File, Line: line, Field: field, Err: fmt.Errorf(format, args...)})
}

func (c *checker) poolMember(field string, m poolMember) (PoolMember, bool) {
	pm := PoolMember{Name: m.Name, Weight: 1, Backends: map[string]route.Backend{}}
	if m.Weight != nil {
		if *m.Weight < 0 || *m.Weight > affinity.MaxWeight {
			c.errorAt(m.at("weight"), field+".weight", "%d: want 0 to %d (0 drains the member)", *m.Weight, affinity.MaxWeight)
			return pm, false
		}
		pm.Weight = *m.Weight
	}
	if len(m.Backends) == 0 {
		c.errorAt(m.at("backends"), field+".backends", "missing: the member's backend URL of each protocol (imap://10.0.0.11:143)")
		return pm, false
	}
	ok := true
	for j, u := range m.Backends {
		bf := fmt.Sprintf("%s.backends[%d]", field, j)
		line := m.line
		if j < len(m.lines) {
			line = m.lines[j]
		}
		if len(m.Backends) == 1 && m.Name == "" && m.Weight == nil {
			bf = field // the short form
		}
		b, err := route.ParseBackend(u)
		switch {
		case err != nil:
			c.errorAt(line, bf, "%v", err)
			ok = false
			continue
		case b.Pool != "":
			c.errorAt(line, bf, "%q: a member is a backend, not a pool", u)
			ok = false
			continue
		}
		if _, dup := pm.Backends[b.Protocol]; dup {
			c.errorAt(line, bf, "a second %s backend: a member has one per protocol", b.Protocol)
			ok = false
			continue
		}
		pm.Backends[b.Protocol] = b
		if pm.Name == "" {
			pm.Name = b.Addr
		}
	}
	return pm, ok
}

func (c *checker) poolHealth(field string, h *healthConfig, protocols []string) *PoolHealth {
	ph := &PoolHealth{
		Interval: h.Interval.Duration, Timeout: h.Timeout.Duration,
		Fall: c.nonNegative(field+".fall", h.Fall), Rise: c.nonNegative(field+".rise", h.Rise),
		Protocol: h.Protocol, User: h.User, MoveOnDown: true,
	}
	switch h.OnDown {
	case "", "move":
	case "keep":
		ph.MoveOnDown = false
	default:
		c.errorf(field+".on_down", "%q: want move (kick the member's users to other members) or keep", h.OnDown)
	}
	if ph.Protocol == "" && len(protocols) > 0 {
		ph.Protocol = protocols[0]
	}
	if h.Protocol != "" && !slices.Contains(protocols, h.Protocol) {
		c.errorf(field+".protocol", "%q: the members have no %s backend (they have %s)", h.Protocol, h.Protocol, strings.Join(protocols, ", "))
	}
	if h.User != "" && ph.Protocol != "imap" {
		c.errorf(field+".user", "login probes speak IMAP: set protocol: imap (a %s member is probed by its greeting)", ph.Protocol)
	}
	switch {
	case h.User != "" && h.PasswordFile == "":
		c.errorf(field+".password_file", "missing: the probe account's password file (user: is set)")
	case h.User == "" && h.PasswordFile != "":
		c.errorf(field+".user", "missing: the probe account (password_file: is set)")
	case h.PasswordFile != "":
		pw, err := c.doc.Secret(field+".password_file", h.PasswordFile)
		c.errs.Add(err)
		ph.Password = pw
	}
	if strings.ContainsAny(h.User+ph.Password, "\x00\r\n") {
		c.errorf(field+".user", "the probe account or its password holds NUL, CR or LF")
	}
	return ph
}
