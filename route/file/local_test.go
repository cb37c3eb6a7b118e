package file

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// localFile has local: rules of every kind, in an order that is not
// their precedence; backend ports say which rule: 1xx account, 2xx
// domain, 3xx match, 4xx network and local alone, 499 default.
const localFile = `routes:
  - account: info
    backend: imap://127.0.0.1:104
  - account: info
    local: 10.0.0.1
    backend: imap://127.0.0.1:102
  - account: info
    network: 192.0.2.0/24
    backend: imap://127.0.0.1:103
  - account: info
    local: 10.0.0.1/32
    network: 192.0.2.0/24
    backend: imap://127.0.0.1:101
  - account: info
    local: ["10.0.0.0/8", "2001:db8:1::/48"]
    backend: imap://127.0.0.1:105
  - domain: b.test
    backend: imap://127.0.0.1:204
  - domain: b.test
    network: 192.0.2.0/24
    backend: imap://127.0.0.1:203
  - domain: b.test
    local: 10.0.0.1
    backend: imap://127.0.0.1:202
  - domain: b.test
    local: 10.0.0.1
    network: 192.0.2.0/24
    backend: imap://127.0.0.1:201
  - match: '^m'
    backend: imap://127.0.0.1:302
  - match: '^m'
    local: 10.0.0.0/8
    backend: imap://127.0.0.1:303
  - match: '^mm'
    local: 10.0.0.1
    backend: imap://127.0.0.1:301
  - network: 192.0.2.0/24
    backend: imap://127.0.0.1:403
  - local: 10.0.0.1
    backend: imap://127.0.0.1:402
  - local: 10.0.0.1
    network: 192.0.2.0/24
    backend: imap://127.0.0.1:401
  - local: "2001:db8:1::1"
    backend: imap://127.0.0.1:404
default: imap://127.0.0.1:499
`

// localCase is a lookup with both addresses ("" for none) and the port
// of the backend it should give.
type localCase struct {
	name, account, client, local, want string
}

func checkLocal(t *testing.T, s *Source, cases []localCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if got := lookupAt(t, s, tt.account, tt.client, tt.local).Backends[0].Addr; got != "127.0.0.1:"+tt.want {
				t.Errorf("backend %s, want port %s", got, tt.want)
			}
		})
	}
}

// TestLocalPrecedence: within each kind, a rule with local: comes before
// the one without, a rule with both prefixes first; the kinds keep their
// order.
func TestLocalPrecedence(t *testing.T) {
	s := mustParse(t, localFile)
	if got := s.Rules(); got != 18 { // 16 rules, one with two locals, and the default
		t.Errorf("Rules() = %d, want 18", got)
	}
	const (
		tenant   = "10.0.0.1:143"
		tenant8  = "10.9.9.9:143"
		other    = "127.0.0.1:143"
		tenant6  = "[2001:db8:1::1]:143"
		inClient = "192.0.2.7:5000"
	)
	checkLocal(t, s, []localCase{
		{"account, local and network", "info", inClient, tenant, "101"},
		{"account and local", "info", "", tenant, "102"},
		{"account and local beats account and network", "Info", inClient, tenant8, "105"},
		{"account and network", "info", inClient, other, "103"},
		{"account", "info", "", other, "104"},
		{"account, local address unknown", "info", inClient, "", "103"},
		{"account, mapped local address", "info", "", "[::ffff:10.0.0.1]:143", "102"},
		{"account, local IPv6 prefix", "info", "", "[2001:db8:1::99]:143", "105"},
		{"domain, local and network", "x@b.test", inClient, tenant, "201"},
		{"domain and local", "x@b.test", "", tenant, "202"},
		{"domain and network", "x@b.test", inClient, tenant8, "203"},
		{"domain", "x@b.test", "", "", "204"},
		{"match with local, longest local first", "mm@c.test", "", tenant, "301"},
		{"match with a shorter local", "m@c.test", "", tenant, "303"},
		{"match with local before file order", "mm@c.test", "", tenant8, "303"},
		{"match without local", "mm@c.test", inClient, other, "302"},
		{"match, local address unknown", "mm@c.test", "", "", "302"},
		{"network and local", "x@c.test", inClient, tenant, "401"},
		{"local alone", "x@c.test", "", tenant, "402"},
		{"local alone, mapped", "x@c.test", "[::1]:1", "[::ffff:10.0.0.1]:993", "402"},
		{"local alone, IPv6", "x@c.test", "", tenant6, "404"},
		{"local alone, zoned", "x@c.test", "", "[2001:db8:1::1%eth0]:143", "404"},
		{"network alone", "x@c.test", inClient, tenant8, "403"},
		{"network alone, local unknown", "x@c.test", inClient, "", "403"},
		{"default, other local address", "x@c.test", "", "10.0.0.2:143", "499"},
		{"default, local unknown", "x@c.test", "", "", "499"},
	})
}

// TestTenantsByLocalAddress is the case local: is for: one name in two
// tenants, told apart by the address the client connected to.
func TestTenantsByLocalAddress(t *testing.T) {
	s := mustParse(t, `routes:
  - local: 127.0.0.1
    backend: imap://127.0.0.1:1
  - local: 127.0.0.2
    backend: imap://127.0.0.1:2
  - account: info
    local: 127.0.0.2
    backend: imap://127.0.0.1:3
`)
	checkLocal(t, s, []localCase{
		{"tenant 1", "info", "", "127.0.0.1:143", "1"},
		{"tenant 2's own rule", "info", "", "127.0.0.2:143", "3"},
		{"tenant 2", "alice", "", "127.0.0.2:143", "2"},
	})
	_, err := s.Lookup(context.Background(), route.Request{Account: "info", LocalAddr: netip.MustParseAddrPort("127.0.0.3:143")})
	if !errors.Is(err, route.ErrNotFound) {
		t.Fatalf("a third address: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Lookup(context.Background(), route.Request{Account: "info"}); !errors.Is(err, route.ErrNotFound) {
		t.Fatalf("no local address: err = %v, want ErrNotFound", err)
	}
}

func TestLocalErrors(t *testing.T) {
	checkParseErrors(t, []parseErrorCase{
		{"bad local", "routes:\n  - local: 10.0.0.0/33\n    backend: imap://h:1\n",
			"routes.yaml:2: routes[0].local: \"10.0.0.0/33\": want a CIDR"},
		{"bad local in list", "routes:\n  - account: a\n    local:\n      - 10.0.0.1\n      - nonsense\n    backend: imap://h:1\n",
			"routes.yaml:5: routes[0].local[1]: \"nonsense\": want a CIDR"},
		{"empty local list", "routes:\n  - local: []\n    backend: imap://h:1\n", "routes.yaml:2: routes[0].local: empty list"},
		{"local as a mapping", "routes:\n  - local: {a: 1}\n    backend: imap://h:1\n", "routes.yaml:2: routes[0].local: want a string"},
		{"short mapped local", "routes:\n  - local: \"::ffff:10.0.0.0/80\"\n    backend: imap://h:1\n", "IPv4-mapped prefix shorter than /96"},
		{"duplicate local alone", "routes:\n  - local: 10.0.0.1\n    backend: imap://h:1\n  - local: \"::ffff:10.0.0.1\"\n    backend: imap://h:2\n",
			"routes.yaml:4: routes[1]: same match as the rule at line 2 (any network, local 10.0.0.1/32)"},
		{"duplicate account and local", "routes:\n  - account: a\n    local: [10.0.0.0/8]\n    network: 192.0.2.0/24\n    backend: imap://h:1\n  - account: A\n    local: 10.1.0.0/8\n    network: 192.0.2.0/24\n    backend: imap://h:2\n",
			"routes.yaml:6: routes[1]: same match as the rule at line 2 (network 192.0.2.0/24, local 10.0.0.0/8)"},
		{"same regexp and local twice", "routes:\n  - match: '^a'\n    local: 10.0.0.1\n    backend: imap://h\n  - match: '^a'\n    local: 10.0.0.1/32\n    backend: imap://g\n",
			"routes.yaml:5: routes[1].match: the same regexp as the rule at line 2, which always wins, local 10.0.0.1/32"},
		{"too many pairs", "routes:\n  - network: [" + strings.Repeat("10.0.0.1,", 257) + "]\n    local: [" + strings.Repeat("10.0.0.1,", 256) + "]\n    backend: imap://h\n",
			"routes.yaml:2: routes[0]: 257 networks and 256 local addresses make 65792 rules (at most 65536: split the lists)"},
		{"local with nothing to route", "routes:\n  - local: 10.0.0.1\n", "routes.yaml:2: routes[0]: no backend"},
	})
}

// TestLocalNotDuplicate: the same account, domain, network or regexp
// with different local prefixes (or with and without one) are distinct
// rules.
func TestLocalNotDuplicate(t *testing.T) {
	mustParse(t, `routes:
  - account: a
    backend: imap://h:1
  - account: a
    local: [10.0.0.1, 10.0.0.2]
    backend: imap://h:2
  - match: '^a'
    backend: imap://h:3
  - match: '^a'
    local: 10.0.0.1
    backend: imap://h:4
  - network: 10.0.0.0/8
    backend: imap://h:5
  - network: 10.0.0.0/8
    local: 10.0.0.1
    backend: imap://h:6
`)
}
