package file

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// matchFile has match: rules among the other kinds, in an order that is
// not their precedence.
const matchFile = `routes:
  - match: '^([^@]*)@([^.]*)\.(.*)$'
    backend: imap://realimapserver
    login: $1_$2_$3
  - network: 192.0.2.0/24
    backend: imap://127.0.0.1:14309
  - match: '^(x|y)-(old)?([a-z]+)@(m[0-9])\.test$'
    backends: ["imaps://$4.${3}.mail.test", "imap://$4-spare.test:1143?server_name=spare.test"]
    login: "%n=$2=$3$"
  - account: alice@a.test
    backend: imap://127.0.0.1:14301
  - domain: b.test
    backend: imap://127.0.0.1:14302
  - domain: c.test
    network: 198.51.100.0/24
    backend: imap://127.0.0.1:14303
  - account: bob@d.test
    network: 198.51.100.0/24
    backend: imap://127.0.0.1:14304
  - match: '[0-9]+'
    backend: imap://digits.test
default: imap://127.0.0.1:14399
`

func TestMatchPrecedence(t *testing.T) {
	s := mustParse(t, matchFile)
	if got := s.Rules(); got != 9 {
		t.Errorf("Rules() = %d, want 9", got)
	}
	checkRoutes(t, s, []routeCase{
		{"account beats match", "alice@a.test", "", "imap://127.0.0.1:14301", ""},
		{"domain beats match", "carol@b.test", "", "imap://127.0.0.1:14302", ""},
		{"domain+network beats match", "carol@c.test", "198.51.100.1:1", "imap://127.0.0.1:14303", ""},
		{"account+network beats match", "bob@d.test", "198.51.100.1:1", "imap://127.0.0.1:14304", ""},
		{"match without the network", "bob@d.test", "", "imap://realimapserver:143", "bob_d_test"},
		{"match beats network alone", "dave@e.test", "192.0.2.1:1", "imap://realimapserver:143", "dave_e_test"},
		{"first match in file order", "x-oldbox@m1.test", "", "imap://realimapserver:143", "x-oldbox_m1_test"},
		{"network alone when no match", "nodot@host", "192.0.2.1:1", "imap://127.0.0.1:14309", ""},
		{"unanchored match anywhere", "user42", "", "imap://digits.test:143", ""},
		{"default when nothing matches", "nodot@host", "", "imap://127.0.0.1:14399", ""},
		{"account case-insensitive, match as given", "ALICE@A.TEST", "", "imap://127.0.0.1:14301", ""},
	})
}

// TestMatchSubmatches: $N and ${N} fill the login and the hosts; a group
// that took no part is empty; %n still expands; a '$' before no digit is
// itself; the URL around the host (port, query) stays, and the server
// name is the expanded host (String would show it otherwise).
func TestMatchSubmatches(t *testing.T) {
	s := mustParse(t, `routes:
  - match: '^(x|y)-(old)?([a-z]+)@(m[0-9])\.test$'
    backends: ["imaps://$4.${3}.mail.test", "imap://$4-spare.test:1143?server_name=spare.test"]
    login: "%n=$2=$3$"
`)
	checkRoutes(t, s, []routeCase{
		{"every group", "y-oldbox@m1.test", "", "imaps://m1.box.mail.test:993 imap://m1-spare.test:1143?server_name=spare.test", "y-oldbox=old=box$"},
		{"a group that took no part", "x-inbox@m2.test", "", "imaps://m2.inbox.mail.test:993 imap://m2-spare.test:1143?server_name=spare.test", "x-inbox==inbox$"},
	})
}

// TestMatchCase: the regexp sees the account as the request has it (the
// gateway lower-cases it unless username_format: as_is), as Perdition's
// does without --lower_case.
func TestMatchCase(t *testing.T) {
	s := mustParse(t, "routes:\n  - match: '^[a-k]'\n    backend: imap://h\ndefault: imap://d\n")
	checkRoutes(t, s, []routeCase{
		{"lower case", "alice", "", "imap://h:143", ""},
		{"upper case", "Alice", "", "imap://d:143", ""},
	})
}

// TestMatchLeftmostLongest: the regexp is POSIX's: of the matches that
// start first, the longest, and its groups as POSIX gives them.
func TestMatchLeftmostLongest(t *testing.T) {
	s := mustParse(t, "routes:\n  - match: '(a|ab)(c|bcd)'\n    backend: imap://h$1-$2\n")
	rt, err := s.Lookup(context.Background(), route.Request{Account: "xabcd"})
	if err != nil {
		t.Fatal(err)
	}
	if got := addrs(rt); got != "imap://ha-bcd:143" {
		t.Errorf("backend %s, want imap://ha-bcd:143 (POSIX leftmost-longest; Perl's would be ab-c)", got)
	}
}

// TestMatchBadExpansion: a host or login the account fills badly is a
// lookup error naming the file, the line and the field, never a route.
func TestMatchBadExpansion(t *testing.T) {
	s := mustParse(t, `routes:
  - match: '^([^@]*)@(.*)$'
    backends:
      - imap://mail.test
      - imap://$2:143
  - match: '^(.*)!(.*)$'
    backend: imap://mail.test
    login: "$2"
`)
	for _, tt := range []struct{ account, want string }{
		{"a@b/c", `routes.yaml:5: routes[0].backends[1]: account "a@b/c": $2 = "b/c": not part of a host name`},
		{"a@x:1@y", `routes.yaml:5: routes[0].backends[1]: account "a@x:1@y": $2 = "x:1@y": not part of a host name`},
		{"a@h%2Ex", `$2 = "h%2Ex": not part of a host name`},
		{"a@", `routes.yaml:5: routes[0].backends[1]: account "a@": backend "imap://:143": `},
		{"a!b\r\nc", `routes.yaml:8: routes[1].login: account "a!b\r\nc": login "b\r": holds a NUL, CR or LF`},
	} {
		rt, err := s.Lookup(context.Background(), route.Request{Protocol: "imap", Account: tt.account})
		if err == nil {
			t.Errorf("%q: routed to %s login %q; want an error", tt.account, addrs(rt), rt.Login)
			continue
		}
		if errors.Is(err, route.ErrNotFound) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v\nwant one containing %s", tt.account, err, tt.want)
		}
	}
	if rt, err := s.Lookup(context.Background(), route.Request{Account: "a@b.c"}); err != nil || addrs(rt) != "imap://mail.test:143 imap://b.c:143" {
		t.Errorf("a@b.c: %s, %v", addrs(rt), err)
	}
}

func TestMatchErrors(t *testing.T) {
	checkParseErrors(t, []parseErrorCase{
		{"bad regexp", "routes:\n  - match: '^a(['\n    backend: imap://h\n",
			"routes.yaml:2: routes[0].match: error parsing regexp: missing closing ]: `[`"},
		{"Perl syntax is not POSIX", "routes:\n  - match: '^\\d+'\n    backend: imap://h\n",
			"routes.yaml:2: routes[0].match: error parsing regexp: invalid escape sequence: `\\d`"},
		{"match and domain", "routes:\n  - match: '^a'\n    domain: a.test\n    backend: imap://h\n",
			"routes.yaml:3: routes[0].domain: not with match:"},
		{"match and account", "routes:\n  - match: '^a'\n    backend: imap://h\n    account: a@a.test\n",
			"routes.yaml:4: routes[0].account: not with match:"},
		{"match and network", "routes:\n  - match: '^a'\n    network: 10.0.0.0/8\n    backend: imap://h\n",
			"routes.yaml:3: routes[0].network: not with match:"},
		{"match as a list", "routes:\n  - match: ['^a']\n    backend: imap://h\n", "routes.yaml:2: routes[0].match: want a string"},
		{"empty match", "routes:\n  - match: ''\n    backend: imap://h\n", "routes.yaml:2: routes[0].match: empty"},
		{"no backend", "routes:\n  - match: '^a'\n", "routes.yaml:2: routes[0]: no backend"},
		{"same regexp twice", "routes:\n  - match: '^a'\n    backend: imap://h\n  - match: '^a'\n    backend: imap://g\n",
			"routes.yaml:4: routes[1].match: the same regexp as the rule at line 2"},
		{"reference in the port", "routes:\n  - match: '^([0-9]+)'\n    backend: imap://h:$1\n",
			`routes.yaml:3: routes[0].backend: "imap://h:$1": submatches ($0 to $9) go in the host only`},
		{"reference in the query", "routes:\n  - match: '^(a)'\n    backend: imaps://h?server_name=$1\n",
			"routes[0].backend: \"imaps://h?server_name=$1\": submatches ($0 to $9) go in the host only"},
		{"reference in a pool", "routes:\n  - match: '^(a)'\n    backend: pool:$1\n", "go in the host only"},
		{"group beyond the regexp's", "routes:\n  - match: '^(a)(b)'\n    backends: [imap://h, imap://$3]\n",
			`routes.yaml:3: routes[0].backends[1]: "imap://$3": $3: the regexp has 2 group(s)`},
		{"login group beyond", "routes:\n  - match: '^a'\n    backend: imap://h\n    login: x$1\n",
			`routes.yaml:4: routes[0].login: "x$1": $1: the regexp has 0 group(s)`},
		{"bad ${}", "routes:\n  - match: '^(a)'\n    backend: imap://h\n    login: '${a}'\n",
			"routes[0].login: \"${a}\": a reference is $0 to $9 or ${0} to ${9}"},
		{"bad host around the reference", "routes:\n  - match: '^(a)'\n    backend: imap://h/$1\n",
			"routes[0].backend: \"imap://h/$1\": submatches ($0 to $9) go in the host only"},
		{"bad URL with a reference", "routes:\n  - match: '^(a)'\n    backend: gopher://$1\n",
			`routes[0].backend: with x for each submatch: backend "gopher://x": unknown scheme`},
		{"login %x beside a reference", "routes:\n  - match: '^(a)'\n    backend: imap://h\n    login: '$1%x'\n",
			"routes.yaml:4: routes[0].login: template \"%x\": unknown %x"},
		{"login with CR", "routes:\n  - account: a@a.test\n    backend: imap://h\n    login: \"a\\rb\"\n",
			`routes.yaml:4: routes[0].login: "a\rb": holds a NUL, CR or LF`},
	})
}

// parseErrorCase is a routes file that does not load and a part of the
// error it must give.
type parseErrorCase struct{ name, data, want string }

// checkParseErrors parses each case's file as a subtest: an error, a
// *file.Error, holding want.
func checkParseErrors(t *testing.T, cases []parseErrorCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("routes.yaml", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant one containing %s", err, tt.want)
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *file.Error", err)
			}
		})
	}
}

// TestDollarOutsideMatchRules: only a match rule has submatches; in the
// login of another rule a '$' is itself, as before.
func TestDollarOutsideMatchRules(t *testing.T) {
	s := mustParse(t, "routes:\n  - account: a@a.test\n    backend: imap://h\n    login: p$1\n")
	rt, err := s.Lookup(context.Background(), route.Request{Account: "a@a.test"})
	if err != nil || rt.Login != "p$1" {
		t.Fatalf("login %q, %v; want p$1", rt.Login, err)
	}
}

func TestParseSubst(t *testing.T) {
	for _, tt := range []struct {
		in   string
		text []string
		refs []int
	}{
		{"", []string{""}, nil},
		{"$", []string{"$"}, nil},
		{"a$", []string{"a$"}, nil},
		{"$1_$2", []string{"", "_", ""}, []int{1, 2}},
		{"${1}0$$2", []string{"", "0$", ""}, []int{1, 2}},
		{"$x$0", []string{"$x", ""}, []int{0}},
	} {
		got, err := parseSubst(tt.in, 9)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if strings.Join(got.text, "|") != strings.Join(tt.text, "|") || len(got.refs) != len(tt.refs) {
			t.Errorf("%q: %q %v, want %q %v", tt.in, got.text, got.refs, tt.text, tt.refs)
			continue
		}
		for i := range tt.refs {
			if got.refs[i] != tt.refs[i] {
				t.Errorf("%q: refs %v, want %v", tt.in, got.refs, tt.refs)
			}
		}
	}
}

// BenchmarkLookupMatch: an account that only the last of many match
// rules takes, and its host and login filled.
func BenchmarkLookupMatch(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("routes:\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "  - match: '^u%d-([a-z]+)@(m[0-9]+)\\.test$'\n    backend: imap://$2.mail.test\n    login: $1\n", i)
	}
	s, err := Parse("routes.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := route.Request{Protocol: "imap", Account: "u999-alice@m7.test"}
	b.ReportAllocs()
	for b.Loop() {
		if rt, err := s.Lookup(ctx, req); err != nil || rt.Login != "alice" {
			b.Fatal(rt, err)
		}
	}
}
