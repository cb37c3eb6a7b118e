package file

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/pipegate/pipegate/internal/ascii"
	"github.com/pipegate/pipegate/route"
)

// rule is one routes[] entry with a single network and a single local
// prefix (a rule listing several becomes one rule for each pair).
type rule struct {
	network  netip.Prefix // !IsValid(): any client
	local    netip.Prefix // !IsValid(): any address the client connected to
	backends []route.Backend
	login    string // template; "" = unchanged
	line     int
	match    *matcher // a match: rule's regexp and templates; nil for the others
}

// matches reports whether the rule applies to a connection from client
// to local (either invalid when unknown: then only a rule without that
// prefix applies).
func (r *rule) matches(client, local netip.Addr) bool {
	return within(r.network, client) && within(r.local, local)
}

func within(p netip.Prefix, a netip.Addr) bool {
	return !p.IsValid() || a.IsValid() && p.Contains(a)
}

// moreSpecific orders rules of one kind: the longest local prefix first
// (a rule without local last), then the longest network prefix.
func moreSpecific(a, b *rule) int {
	if c := bits(b.local) - bits(a.local); c != 0 {
		return c
	}
	return bits(b.network) - bits(a.network)
}

// result builds the caller's own copy of the route.
func (r *rule) result(account string) (route.Route, error) {
	rt := route.Route{Backends: slices.Clone(r.backends)}
	if r.login != "" {
		login, err := route.Expand(r.login, account, nil)
		if err != nil { // checked at load time; kept for safety
			return route.Route{}, fmt.Errorf("route/file: line %d: login: %w", r.line, err)
		}
		rt.Login = login
	}
	return rt, nil
}

// table is an immutable, loaded routes file.
type table struct {
	accounts map[string][]*rule // lower-case account → rules, most specific first
	domains  map[string][]*rule // lower-case domain → rules, most specific first
	matches  []*rule            // match: rules, longest local prefix first, then in file order
	networks []*rule            // network and local rules without account or domain, most specific first
	def      *rule              // nil: no default
	seen     map[ruleKey]*rule  // while parsing: the rules added, to find duplicates
	rules    int
	pools    []PoolRef // the pools the rules name
}

// PoolRef is a pool:NAME backend a routes file names: where, for a daemon
// to check that it has such a pool.
type PoolRef struct {
	Pool  string // NAME
	Line  int
	Field string // routes[2].backends[0], default, ...
}

func newTable() *table {
	return &table{accounts: map[string][]*rule{}, domains: map[string][]*rule{}, seen: map[ruleKey]*rule{}}
}

// ruleKey is what makes two rules the same match.
type ruleKey struct {
	m              *map[string][]*rule // &t.accounts, &t.domains; nil for t.networks
	key            string
	network, local netip.Prefix
}

// add files r under key (in *m, or networks when m is nil) and reports a
// rule it duplicates. The lists are put in order by finish.
func (t *table) add(m *map[string][]*rule, key string, r *rule) (dup *rule) {
	k := ruleKey{m: m, key: key, network: r.network, local: r.local}
	if o := t.seen[k]; o != nil {
		return o
	}
	t.seen[k] = r
	if m != nil {
		(*m)[key] = append((*m)[key], r)
	} else {
		t.networks = append(t.networks, r)
	}
	return nil
}

// finish puts the rules, added in file order, in the order they are
// tried (the package comment's): each account's, each domain's and the
// network rules by moreSpecific; the match: rules by the longest local
// prefix (a rule without local last), the file's order among rules of
// the same length.
func (t *table) finish() {
	for _, m := range []map[string][]*rule{t.accounts, t.domains} {
		for _, list := range m {
			slices.SortStableFunc(list, moreSpecific)
		}
	}
	slices.SortStableFunc(t.networks, moreSpecific)
	slices.SortStableFunc(t.matches, func(a, b *rule) int { return bits(b.local) - bits(a.local) })
	t.seen = nil
}

func bits(p netip.Prefix) int {
	if !p.IsValid() {
		return -1
	}
	b := p.Bits()
	if p.Addr().Is4() {
		b += 96 // so an IPv4 /32 ranks like an IPv6 /128
	}
	return b
}

func first(list []*rule, client, local netip.Addr) *rule {
	for _, r := range list {
		if r.matches(client, local) {
			return r
		}
	}
	return nil
}

// ruleAddr is the address of ap as the rules have it: IPv4-mapped as
// IPv4, no zone; invalid when ap is.
func ruleAddr(ap netip.AddrPort) netip.Addr {
	if !ap.IsValid() {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

func (t *table) lookup(req route.Request) (route.Route, error) {
	account := ascii.Lower(req.Account)
	client, local := ruleAddr(req.ClientAddr), ruleAddr(req.LocalAddr)
	r := first(t.accounts[account], client, local)
	if r == nil {
		if _, domain := route.SplitAccount(account); domain != "" {
			r = first(t.domains[domain], client, local)
		}
	}
	if r == nil {
		// The account as the gateway decided it (lower case unless
		// username_format says otherwise), as Perdition's popmap.re has it.
		if mr, m := firstMatch(t.matches, req.Account, local); mr != nil {
			return mr.match.result(mr, req.Account, m)
		}
	}
	if r == nil {
		r = first(t.networks, client, local)
	}
	if r == nil {
		r = t.def
	}
	if r == nil {
		return route.Route{}, route.ErrNotFound
	}
	return r.result(req.Account)
}
