package file

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/route"
)

// matcher is what a match: rule has beyond a rule: its regexp, compiled
// once at load time, and the templates its submatches fill.
type matcher struct {
	re        *regexp.Regexp
	login     subst       // the login's template, split at its references
	loginLine int         // for lookup errors
	hosts     []*hostTmpl // per backend; nil: the backend as parsed
	file      string      // for lookup errors
	name      string      // routes[N]
}

// hostTmpl is a backend URL whose host holds submatch references.
type hostTmpl struct {
	prefix, suffix string // SCHEME:// and :PORT?QUERY, taken as written
	host           subst
	line           int
	field          string // routes[N].backend or routes[N].backends[M]
}

// subst is a text with references to a regexp's submatches: $0 to $9, or
// ${0} to ${9} (as $1_$2 in a Perdition popmap.re value). Any other '$'
// is itself.
type subst struct {
	text []string // the text around the references: len(refs)+1 pieces
	refs []int    // group numbers
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseSubst splits s at its references to the groups of a regexp that
// has groups of them (besides $0, the whole match).
func parseSubst(s string, groups int) (subst, error) {
	var t subst
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			continue
		}
		var n, w int
		switch {
		case isDigit(s[i+1]):
			n, w = int(s[i+1]-'0'), 2
		case s[i+1] == '{':
			if i+3 >= len(s) || !isDigit(s[i+2]) || s[i+3] != '}' {
				return subst{}, fmt.Errorf("%q: a reference is $0 to $9 or ${0} to ${9}", s)
			}
			n, w = int(s[i+2]-'0'), 4
		default:
			continue
		}
		if n > groups {
			return subst{}, fmt.Errorf("%q: $%d: the regexp has %d group(s)", s, n, groups)
		}
		t.text = append(t.text, s[start:i])
		t.refs = append(t.refs, n)
		i += w - 1
		start = i + 1
	}
	t.text = append(t.text, s[start:])
	return t, nil
}

// fill joins the text, mapped by text, and the submatches of account
// given by m (FindStringSubmatchIndex), each checked by check; a group
// that took no part in the match is empty.
func (t *subst) fill(account string, m []int, text func(string) (string, error), check func(string) error) (string, error) {
	var b strings.Builder
	for i, piece := range t.text {
		if text != nil {
			var err error
			if piece, err = text(piece); err != nil {
				return "", err
			}
		}
		b.WriteString(piece)
		if i == len(t.refs) {
			break
		}
		n := t.refs[i]
		var v string
		if lo, hi := m[2*n], m[2*n+1]; lo >= 0 {
			v = account[lo:hi]
		}
		if check != nil {
			if err := check(v); err != nil {
				return "", fmt.Errorf("$%d = %q: %w", n, v, err)
			}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// standIn fills every reference with "x", so that a template can be
// checked at load time as a URL or a login.
func (t *subst) standIn() string {
	m := make([]int, 20) // $0 to $9, each "x"[0:1]
	for i := 1; i < len(m); i += 2 {
		m[i] = 1
	}
	s, _ := t.fill("x", m, nil, nil)
	return s
}

// matchRegexp reads a match: field: a POSIX extended regular expression, taken
// as written (spaces count). present is true when the field is given, even
// if it does not compile.
func (p *parser) matchRegexp(n *yaml.Node, field string) (re *regexp.Regexp, present bool) {
	if isAbsent(n) {
		return nil, false
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n.Line, field, "want a string (a POSIX extended regular expression)")
		return nil, true
	}
	if n.Value == "" {
		p.errorf(n.Line, field, "empty")
		return nil, true
	}
	re, err := regexp.CompilePOSIX(n.Value)
	if err != nil {
		p.errorf(n.Line, field, "%v", err)
		return nil, true
	}
	return re, true
}

// matchBackend parses the backend URL u of a match rule: one whose host
// holds references becomes a template, checked here with "x" for each.
func matchBackend(u string, re *regexp.Regexp) (route.Backend, *hostTmpl, error) {
	all, err := parseSubst(u, re.NumSubexp())
	if err != nil {
		return route.Backend{}, nil, err
	}
	if len(all.refs) == 0 {
		b, err := route.ParseBackend(u)
		return b, nil, err
	}
	from, to, ok := hostSpan(u)
	ht, _ := parseSubst(u[from:to], re.NumSubexp()) // its references are among all's
	if !ok || len(ht.refs) != len(all.refs) {
		return route.Backend{}, nil, fmt.Errorf("%q: submatches ($0 to $9) go in the host only", u)
	}
	prefix, suffix := u[:from], u[to:]
	t := &hostTmpl{prefix: prefix, suffix: suffix, host: ht}
	b, err := route.ParseBackend(prefix + ht.standIn() + suffix)
	if err != nil {
		return route.Backend{}, nil, fmt.Errorf("with x for each submatch: %w", err)
	}
	return b, t, nil
}

// hostSpan finds the host of SCHEME://HOST[:PORT][?QUERY] as written.
func hostSpan(u string) (from, to int, ok bool) {
	i := strings.Index(u, "://")
	if i < 0 {
		return 0, 0, false
	}
	from, to = i+3, len(u)
	if j := strings.IndexAny(u[from:], "/?#"); j >= 0 {
		to = from + j
	}
	if k := strings.LastIndexByte(u[from:to], ':'); k >= 0 && !strings.Contains(u[from+k:to], "]") {
		to = from + k
	}
	return from, to, true
}

// errNotHostPart is what a submatch that cannot stand in a host name gets.
var errNotHostPart = errors.New("not part of a host name (want ASCII letters, digits, '-', '_' and '.')")

// hostPart lets into a host only what a host name is made of: a
// submatch never changes the URL around it (no ':', '/', '@', '%').
func hostPart(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '-' || c == '_' || c == '.') {
			return errNotHostPart
		}
	}
	return nil
}

// firstMatch finds the first match rule (in the table's order) for
// connections to local whose regexp matches account anywhere, and its
// submatches.
func firstMatch(rules []*rule, account string, local netip.Addr) (*rule, []int) {
	for _, r := range rules {
		if !within(r.local, local) {
			continue
		}
		if m := r.match.re.FindStringSubmatchIndex(account); m != nil {
			return r, m
		}
	}
	return nil, nil
}

// result fills the rule's templates with the submatches m of account.
// A host or login that comes out bad is an error naming the rule: never
// a dial to whatever the account spelled.
func (mr *matcher) result(r *rule, account string, m []int) (route.Route, error) {
	fail := func(line int, field string, err error) (route.Route, error) {
		return route.Route{}, fmt.Errorf("route/file: %w", &Error{File: mr.file, Line: line, Field: field,
			Err: fmt.Errorf("account %q: %w", account, err)})
	}
	rt := route.Route{Backends: make([]route.Backend, len(r.backends))}
	for i, b := range r.backends {
		t := mr.hosts[i]
		if t == nil {
			rt.Backends[i] = b
			continue
		}
		host, err := t.host.fill(account, m, nil, hostPart)
		if err == nil {
			rt.Backends[i], err = route.ParseBackend(t.prefix + host + t.suffix)
		}
		if err != nil {
			return fail(t.line, t.field, err)
		}
	}
	if r.login == "" {
		return rt, nil
	}
	login, err := mr.login.fill(account, m, func(s string) (string, error) { return route.Expand(s, account, nil) }, nil)
	if err == nil && strings.ContainsAny(login, badLoginBytes) {
		err = fmt.Errorf("login %q: holds a NUL, CR or LF", login)
	}
	if err != nil {
		return fail(mr.loginLine, mr.name+".login", err)
	}
	rt.Login = login
	return rt, nil
}

// badLoginBytes may not be in a login sent to a backend.
const badLoginBytes = "\x00\r\n"
