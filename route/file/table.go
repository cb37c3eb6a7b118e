package file

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/pipegate/pipegate/internal/ascii"
	"github.com/pipegate/pipegate/route"
)

// rule is one routes[] entry with a single network (a rule listing several
// networks becomes several rules).
type rule struct {
	network  netip.Prefix // !IsValid(): any client
	backends []route.Backend
	login    string // template; "" = unchanged
	line     int
	match    *matcher // a match: rule's regexp and templates; nil for the others
}

func (r *rule) matches(addr netip.Addr) bool {
	if !r.network.IsValid() {
		return true
	}
	return addr.IsValid() && r.network.Contains(addr)
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
	matches  []*rule            // match: rules, in file order
	networks []*rule            // network-only rules, longest prefix first
	def      *rule              // nil: no default
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
	return &table{accounts: map[string][]*rule{}, domains: map[string][]*rule{}}
}

// add files r under key (in m, or networks when m is nil) and reports a
// rule it duplicates.
func (t *table) add(m map[string][]*rule, key string, r *rule) (dup *rule) {
	list := t.networks
	if m != nil {
		list = m[key]
	}
	for _, o := range list {
		if o.network == r.network {
			return o
		}
	}
	list = append(list, r)
	// Longest prefix first; a rule without network (any client) last.
	slices.SortStableFunc(list, func(a, b *rule) int { return bits(b.network) - bits(a.network) })
	if m != nil {
		m[key] = list
	} else {
		t.networks = list
	}
	return nil
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

func first(list []*rule, addr netip.Addr) *rule {
	for _, r := range list {
		if r.matches(addr) {
			return r
		}
	}
	return nil
}

func (t *table) lookup(req route.Request) (route.Route, error) {
	account := ascii.Lower(req.Account)
	var addr netip.Addr
	if req.ClientAddr.IsValid() {
		addr = req.ClientAddr.Addr().Unmap().WithZone("") // rules have no zone
	}
	r := first(t.accounts[account], addr)
	if r == nil {
		if _, domain := route.SplitAccount(account); domain != "" {
			r = first(t.domains[domain], addr)
		}
	}
	if r == nil {
		// The account as the gateway decided it (lower case unless
		// username_format says otherwise), as Perdition's popmap.re has it.
		if mr, m := firstMatch(t.matches, req.Account); mr != nil {
			return mr.match.result(mr, req.Account, m)
		}
	}
	if r == nil {
		r = first(t.networks, addr)
	}
	if r == nil {
		r = t.def
	}
	if r == nil {
		return route.Route{}, route.ErrNotFound
	}
	return r.result(req.Account)
}
