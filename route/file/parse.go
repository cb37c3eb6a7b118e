package file

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/configerr"
	"github.com/pipegate/pipegate/route"
)

// Error is one problem in a routes file: "FILE:LINE: FIELD: problem".
type Error = configerr.Error

// document is the file's shape. Values are yaml.Nodes so that each keeps
// its line for error messages; KnownFields rejects unknown keys.
type document struct {
	Routes  []ruleDoc `yaml:"routes"`
	Default yaml.Node `yaml:"default"`
}

type ruleDoc struct {
	Account  yaml.Node `yaml:"account"`
	Domain   yaml.Node `yaml:"domain"`
	Network  yaml.Node `yaml:"network"`
	Backend  yaml.Node `yaml:"backend"`
	Backends yaml.Node `yaml:"backends"`
	Login    yaml.Node `yaml:"login"`
}

var knownKeys = map[string]string{
	"document": "routes, default",
	"ruleDoc":  "account, domain, network, backend, backends, login",
}

// maxErrors bounds the list of problems reported for one file.
const maxErrors = 20

// parser collects the problems found in one file.
type parser struct {
	file  string
	errs  []error
	lines []int // line of each routes[] item, for messages about a whole rule
}

func (p *parser) errorf(line int, field, format string, args ...any) {
	if len(p.errs) < maxErrors {
		p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Err: fmt.Errorf(format, args...)})
	}
}

func (p *parser) err() error { return errors.Join(p.errs...) }

func parse(name string, data []byte) (*table, error) {
	p := &parser{file: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p.yamlError(err)
		return nil, p.err()
	}
	if len(root.Content) == 0 {
		p.errorf(0, "", "empty file (want routes: and/or default:)")
		return nil, p.err()
	}
	p.ruleLines(&root)

	var doc document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		p.yamlError(err)
		return nil, p.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.errorf(extra.Line, "", "more than one YAML document (a second --- ?)")
		return nil, p.err()
	}

	t := newTable()
	for i := range doc.Routes {
		p.rule(t, i, &doc.Routes[i])
	}
	if !isAbsent(&doc.Default) {
		backends := p.backendList(&doc.Default, "default")
		if len(backends) > 0 {
			t.def = &rule{backends: backends, line: doc.Default.Line}
			t.rules++
		}
	}
	if len(p.errs) > 0 {
		return nil, p.err()
	}
	return t, nil
}

// ruleLines remembers where each routes[] item starts.
func (p *parser) ruleLines(root *yaml.Node) {
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "routes" && doc.Content[i+1].Kind == yaml.SequenceNode {
			for _, item := range doc.Content[i+1].Content {
				p.lines = append(p.lines, item.Line)
			}
		}
	}
}

// ruleAt names the routes[] item a line belongs to.
func (p *parser) ruleAt(line int) string {
	idx := -1
	for i, l := range p.lines {
		if l <= line {
			idx = i
		}
	}
	if idx < 0 {
		return ""
	}
	return fmt.Sprintf("routes[%d]", idx)
}

var (
	reLine    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	reUnknown = regexp.MustCompile(`^field (\S+) not found in type \S*\.(\w+)$`)
)

// yamlError turns the yaml package's messages into "FILE:LINE: FIELD: problem".
func (p *parser) yamlError(err error) {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		line := 0
		if sm := reLine.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			m = sm[2]
		}
		m = strings.TrimPrefix(m, "yaml: ")
		if sm := reUnknown.FindStringSubmatch(m); sm != nil {
			field := sm[1]
			if sm[2] == "ruleDoc" {
				if r := p.ruleAt(line); r != "" {
					field = r + "." + field
				}
			}
			p.errorf(line, field, "unknown field (want one of: %s)", knownKeys[sm[2]])
			continue
		}
		m = strings.ReplaceAll(m, "into file.document", "into the routes file (want a mapping with routes: and default:)")
		m = strings.ReplaceAll(m, "into []file.ruleDoc", "into routes (want a list)")
		m = strings.ReplaceAll(m, "into file.ruleDoc", "into a route (want a mapping)")
		p.errorf(line, "", "%s", m)
	}
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
		var out []string
		for i, item := range n.Content {
			if s, ok := p.str(item, fmt.Sprintf("%s[%d]", field, i)); ok {
				out = append(out, s)
			}
		}
		return out
	}
	s, ok := p.str(n, field)
	if !ok {
		return nil
	}
	return []string{s}
}

func (p *parser) backendList(n *yaml.Node, field string) []route.Backend {
	var out []route.Backend
	urls := p.strList(n, field)
	for i, u := range urls {
		f := field
		if n.Kind == yaml.SequenceNode {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		b, err := route.ParseBackend(u)
		if err != nil {
			line := n.Line
			if n.Kind == yaml.SequenceNode {
				line = n.Content[i].Line
			}
			p.errorf(line, f, "%v", err)
			continue
		}
		out = append(out, b)
	}
	if len(out) != len(urls) {
		return nil
	}
	return out
}

func (p *parser) rule(t *table, i int, d *ruleDoc) {
	name := fmt.Sprintf("routes[%d]", i)
	line := 0
	if i < len(p.lines) {
		line = p.lines[i]
	}
	before := len(p.errs)

	account, hasAccount := p.str(&d.Account, name+".account")
	if hasAccount {
		account = strings.ToLower(account)
		if strings.ContainsAny(account, " \t*") {
			p.errorf(d.Account.Line, name+".account", "%q: an account has no spaces or wildcards (use domain: for *@domain)", account)
		}
	}
	domain, hasDomain := p.str(&d.Domain, name+".domain")
	if hasDomain {
		domain = strings.ToLower(strings.TrimPrefix(domain, "*@"))
		if domain == "" || strings.ContainsAny(domain, "@* \t") {
			p.errorf(d.Domain.Line, name+".domain", "%q: want a domain such as b.test or *@b.test", d.Domain.Value)
		}
	}
	var networks []netip.Prefix
	if !isAbsent(&d.Network) {
		for j, s := range p.strList(&d.Network, name+".network") {
			pfx, err := parsePrefix(s)
			if err != nil {
				l, f := d.Network.Line, name+".network"
				if d.Network.Kind == yaml.SequenceNode {
					l, f = d.Network.Content[j].Line, fmt.Sprintf("%s[%d]", f, j)
				}
				p.errorf(l, f, "%v", err)
				continue
			}
			networks = append(networks, pfx)
		}
	}
	var backends []route.Backend
	switch {
	case !isAbsent(&d.Backend) && !isAbsent(&d.Backends):
		p.errorf(d.Backends.Line, name, "both backend: and backends: (write one)")
	case !isAbsent(&d.Backend):
		if d.Backend.Kind != yaml.ScalarNode {
			p.errorf(d.Backend.Line, name+".backend", "want one URL (use backends: for a list)")
		} else {
			backends = p.backendList(&d.Backend, name+".backend")
		}
	case !isAbsent(&d.Backends):
		backends = p.backendList(&d.Backends, name+".backends")
	default:
		p.errorf(line, name, "no backend: or backends:")
	}
	login, hasLogin := p.str(&d.Login, name+".login")
	if hasLogin {
		if _, err := route.Expand(login, "user@example.org", nil); err != nil {
			p.errorf(d.Login.Line, name+".login", "%v", err)
		}
	}
	switch {
	case hasAccount && hasDomain:
		p.errorf(line, name, "both account: and domain: (write one)")
	case !hasAccount && !hasDomain && len(networks) == 0 && isAbsent(&d.Network):
		p.errorf(line, name, "matches nothing: want account:, domain: or network:")
	}
	if len(p.errs) > before {
		return
	}

	if len(networks) == 0 {
		networks = []netip.Prefix{{}} // any client
	}
	for _, pfx := range networks {
		r := &rule{network: pfx, backends: backends, login: login, line: line}
		var dup *rule
		switch {
		case hasAccount:
			dup = t.add(t.accounts, account, r)
		case hasDomain:
			dup = t.add(t.domains, domain, r)
		default:
			dup = t.add(nil, "", r)
		}
		if dup != nil {
			what := "any network"
			if pfx.IsValid() {
				what = "network " + pfx.String()
			}
			p.errorf(line, name, "same match as the rule at line %d (%s)", dup.line, what)
			return
		}
		t.rules++
	}
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
