package file

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/ascii"
	"github.com/pipegate/pipegate/internal/configerr"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/route"
)

// Error is one problem in a routes file: "FILE:LINE: FIELD: problem".
type Error = configerr.Error

// document is the file's shape, checked by yamlconf (unknown keys, kinds,
// lines). Values are nodes so that each keeps its line for the messages.
type document struct {
	Routes  []ruleDoc `yaml:"routes"`
	Default node      `yaml:"default"`
}

type ruleDoc struct {
	Account  node `yaml:"account"`
	Match    node `yaml:"match"`
	Domain   node `yaml:"domain"`
	Network  node `yaml:"network"`
	Local    node `yaml:"local"`
	Backend  node `yaml:"backend"`
	Backends node `yaml:"backends"`
	Login    node `yaml:"login"`
}

// node is a value kept as written (a string or a list of strings), checked
// by the parser with its line.
type node struct{ yaml.Node }

// UnmarshalYAML keeps n as it is.
func (v *node) UnmarshalYAML(n *yaml.Node) error {
	v.Node = *n
	return nil
}

// parser collects the problems found in one file.
type parser struct {
	file  string
	doc   *yamlconf.Doc
	errs  yamlconf.Errors
	pools []PoolRef // the pool:NAME backends named, in file order
	// regexps: the match: rules' expressions (and local prefixes) →
	// their lines, so that a rule that can never win is an error.
	regexps map[string]int
}

func (p *parser) errorf(line int, field, format string, args ...any) {
	p.errs.Add(&Error{File: p.file, Line: line, Field: field, Err: fmt.Errorf(format, args...)})
}

func parse(name string, data []byte) (*table, error) {
	var d document
	doc, err := yamlconf.Decode(name, data, &d)
	if err != nil {
		return nil, err
	}
	if !doc.Has("routes") && !doc.Has("default") {
		return nil, doc.Errorf("", "empty file (want routes: and/or default:)")
	}
	p := &parser{file: name, doc: doc, regexps: map[string]int{}}

	t := newTable()
	for i := range d.Routes {
		p.rule(t, i, &d.Routes[i])
	}
	if !isAbsent(&d.Default.Node) {
		backends, _ := p.backendList(&d.Default.Node, "default", nil)
		if len(backends) > 0 {
			t.def = &rule{backends: backends, line: d.Default.Line}
			t.rules++
		}
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	t.finish()
	t.pools = p.pools
	return t, nil
}

func isAbsent(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// str reads a scalar string field; ok is false when it is absent.
func (p *parser) str(n *yaml.Node, field string) (s string, ok bool) {
	if isAbsent(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n.Line, field, "want a string")
		return "", false
	}
	s = strings.TrimSpace(n.Value)
	if s == "" {
		p.errorf(n.Line, field, "empty")
		return "", false
	}
	return s, true
}

// strList reads a field that is a string or a list of strings.
func (p *parser) strList(n *yaml.Node, field string) []string {
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			p.errorf(n.Line, field, "empty list")
			return nil
		}
		// One string per item, "" for an item already refused, so that
		// callers name the items by their own index and line.
		out := make([]string, len(n.Content))
		for i, item := range n.Content {
			out[i], _ = p.str(item, fmt.Sprintf("%s[%d]", field, i))
		}
		return out
	}
	s, ok := p.str(n, field)
	if !ok {
		return nil
	}
	return []string{s}
}

// backendList reads the URLs of field; for a match rule (re not nil) a URL
// whose host holds submatch references gives its template too.
func (p *parser) backendList(n *yaml.Node, field string, re *regexp.Regexp) ([]route.Backend, []*hostTmpl) {
	var out []route.Backend
	var tmpls []*hostTmpl
	urls := p.strList(n, field)
	for i, u := range urls {
		if u == "" {
			continue // refused by strList
		}
		f, line := field, n.Line
		if n.Kind == yaml.SequenceNode {
			f, line = fmt.Sprintf("%s[%d]", field, i), n.Content[i].Line
		}
		var b route.Backend
		var t *hostTmpl
		var err error
		if re == nil {
			b, err = route.ParseBackend(u)
		} else {
			b, t, err = matchBackend(u, re)
		}
		if err != nil {
			p.errorf(line, f, "%v", err)
			continue
		}
		if b.Pool != "" {
			p.pools = append(p.pools, PoolRef{Pool: b.Pool, Line: line, Field: f})
		}
		if t != nil {
			t.line, t.field = line, f
		}
		out = append(out, b)
		tmpls = append(tmpls, t)
	}
	if len(out) != len(urls) {
		return nil, nil
	}
	return out, tmpls
}

func (p *parser) rule(t *table, i int, d *ruleDoc) {
	name := fmt.Sprintf("routes[%d]", i)
	line := p.doc.Line(name)
	before := len(p.errs)

	re, hasMatch := p.matchRegexp(&d.Match.Node, name+".match")
	if hasMatch {
		p.matchAlone(name, d)
		if len(p.errs) > before {
			return
		}
	}

	account, hasAccount := p.str(&d.Account.Node, name+".account")
	if hasAccount {
		account = ascii.Lower(account)
		if strings.ContainsAny(account, " \t*") {
			p.errorf(d.Account.Line, name+".account", "%q: an account has no spaces or wildcards (use domain: for *@domain)", account)
		}
	}
	domain, hasDomain := p.str(&d.Domain.Node, name+".domain")
	if hasDomain {
		domain = ascii.Lower(strings.TrimPrefix(domain, "*@"))
		if domain == "" || strings.ContainsAny(domain, "@* \t") {
			p.errorf(d.Domain.Line, name+".domain", "%q: want a domain such as b.test or *@b.test", d.Domain.Value)
		}
	}
	networks := p.prefixes(&d.Network.Node, name+".network")
	locals := p.prefixes(&d.Local.Node, name+".local")
	var backends []route.Backend
	var hosts []*hostTmpl
	switch {
	case !isAbsent(&d.Backend.Node) && !isAbsent(&d.Backends.Node):
		p.errorf(d.Backends.Line, name, "both backend: and backends: (write one)")
	case !isAbsent(&d.Backend.Node):
		if d.Backend.Kind != yaml.ScalarNode {
			p.errorf(d.Backend.Line, name+".backend", "want one URL (use backends: for a list)")
		} else {
			backends, hosts = p.backendList(&d.Backend.Node, name+".backend", re)
		}
	case !isAbsent(&d.Backends.Node):
		backends, hosts = p.backendList(&d.Backends.Node, name+".backends", re)
	default:
		p.errorf(line, name, "no backend: or backends:")
	}
	login, hasLogin := p.str(&d.Login.Node, name+".login")
	var loginTmpl subst
	if hasLogin {
		loginTmpl = p.login(login, d.Login.Line, name+".login", re)
	}
	switch {
	case hasAccount && hasDomain:
		p.errorf(line, name, "both account: and domain: (write one)")
	case !hasAccount && !hasDomain && !hasMatch && isAbsent(&d.Network.Node) && isAbsent(&d.Local.Node):
		p.errorf(line, name, "matches nothing: want account:, domain:, match:, network: or local:")
	}
	if len(networks) == 0 {
		networks = []netip.Prefix{{}} // any client
	}
	if len(locals) == 0 {
		locals = []netip.Prefix{{}} // any local address
	}
	if n := len(networks) * len(locals); n > maxPairs {
		p.errorf(line, name, "%d networks and %d local addresses make %d rules (at most %d: split the lists)",
			len(networks), len(locals), n, maxPairs)
	}
	if len(p.errs) > before {
		return
	}
	for _, lp := range locals {
		if hasMatch {
			key := d.Match.Value + "\x00" + lp.String()
			if at, dup := p.regexps[key]; dup {
				p.errorf(d.Match.Line, name+".match", "the same regexp as the rule at line %d, which always wins%s", at, localText(", ", lp))
				return
			}
			p.regexps[key] = line
			t.matches = append(t.matches, &rule{local: lp, backends: backends, login: login, line: line, match: &matcher{
				re: re, login: loginTmpl, loginLine: d.Login.Line, hosts: hosts, file: p.file, name: name}})
			t.rules++
			continue
		}
		for _, pfx := range networks {
			r := &rule{network: pfx, local: lp, backends: backends, login: login, line: line}
			var dup *rule
			switch {
			case hasAccount:
				dup = t.add(&t.accounts, account, r)
			case hasDomain:
				dup = t.add(&t.domains, domain, r)
			default:
				dup = t.add(nil, "", r)
			}
			if dup != nil {
				what := "any network"
				if pfx.IsValid() {
					what = "network " + pfx.String()
				}
				p.errorf(line, name, "same match as the rule at line %d (%s%s)", dup.line, what, localText(", ", lp))
				return
			}
			t.rules++
		}
	}
}

// maxPairs bounds the rules one routes[] entry becomes (one for each
// network and local address): a few short lines must not make millions.
const maxPairs = 1 << 16

// localText names a rule's local prefix after sep; "" for any.
func localText(sep string, lp netip.Prefix) string {
	if !lp.IsValid() {
		return ""
	}
	return sep + "local " + lp.String()
}

// prefixes reads a field of CIDRs or addresses (network:, local:); nil
// when it is absent.
func (p *parser) prefixes(n *yaml.Node, field string) []netip.Prefix {
	if isAbsent(n) {
		return nil
	}
	var out []netip.Prefix
	for j, s := range p.strList(n, field) {
		if s == "" {
			continue // refused by strList
		}
		pfx, err := parsePrefix(s)
		if err != nil {
			l, f := n.Line, field
			if n.Kind == yaml.SequenceNode {
				l, f = n.Content[j].Line, fmt.Sprintf("%s[%d]", f, j)
			}
			p.errorf(l, f, "%v", err)
			continue
		}
		out = append(out, pfx)
	}
	return out
}

// matchAlone refuses the keys a match: rule cannot have with it.
func (p *parser) matchAlone(name string, d *ruleDoc) {
	for _, f := range []struct {
		key string
		n   *node
	}{{"account", &d.Account}, {"domain", &d.Domain}, {"network", &d.Network}} {
		if !isAbsent(&f.n.Node) {
			p.errorf(f.n.Line, name+"."+f.key, "not with match: (a match rule tests the account with its regexp alone)")
		}
	}
}

// login checks a login template: %u, %n, %d, and for a match rule (re
// not nil) the references to its submatches, which it returns.
func (p *parser) login(login string, line int, field string, re *regexp.Regexp) subst {
	if strings.ContainsAny(login, badLoginBytes) {
		p.errorf(line, field, "%q: holds a NUL, CR or LF", login)
		return subst{}
	}
	t := subst{text: []string{login}}
	if re != nil {
		var err error
		if t, err = parseSubst(login, re.NumSubexp()); err != nil {
			p.errorf(line, field, "%v", err)
			return subst{}
		}
	}
	for _, piece := range t.text {
		if _, err := route.Expand(piece, "user@example.org", nil); err != nil {
			p.errorf(line, field, "%v", err)
			break
		}
	}
	return t
}

// parsePrefix accepts a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address", s)
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8", s)
	}
	if pfx.Addr().Is4In6() {
		if pfx.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: IPv4-mapped prefix shorter than /96", s)
		}
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
	}
	return pfx.Masked(), nil
}
