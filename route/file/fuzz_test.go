package file

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// fuzzLocals are the local addresses FuzzParse's lookups vary: none,
// IPv4, IPv4-mapped, IPv6 with a zone.
var fuzzLocals = []netip.AddrPort{{}, netip.MustParseAddrPort("10.0.0.1:143"),
	netip.MustParseAddrPort("[::ffff:10.0.0.1]:993"), netip.MustParseAddrPort("[2001:db8:1::1%eth0]:143")}

// FuzzParse: any bytes give a table or an error, never a panic, and a
// loaded table answers any lookup.
func FuzzParse(f *testing.F) {
	f.Add([]byte(issueFile))
	f.Add([]byte(fullFile))
	f.Add([]byte("routes:\n  - network: [\"::/0\", 0.0.0.0/0]\n    backend: imap://h\n"))
	f.Add([]byte("default: [imaps://[::1]:993?id=0&proxy=v2]\n"))
	f.Add([]byte(matchFile))
	f.Add([]byte("routes:\n  - match: '^([^@]*)@(.*)$'\n    backends: [\"imap://$2:1\", imap://x${1}y]\n    login: '%d$1$'\n"))
	f.Add([]byte("routes:\n  - match: '(a*)*|b{2,}|[[:alpha:]]+$'\n    backend: imap://$0\n"))
	f.Add([]byte(localFile))
	f.Add([]byte("routes:\n  - local: [\"::ffff:10.0.0.1\", \"::/0\"]\n    network: 10.0.0.0/8\n    backend: imap://h\n  - match: '^(.)'\n    local: 10.0.0.0/8\n    backend: imap://$1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, a := range []string{"alice@a.test", "x@b.test", "info", "", "@", "a@", "x-oldbox@m1.test", "mm@c.test", "a:b/c@d%e\r\n"} {
			for _, local := range fuzzLocals {
				req := route.Request{Account: a, ClientAddr: netip.MustParseAddrPort("10.1.2.3:4"), LocalAddr: local}
				rt, err := s.Lookup(context.Background(), req)
				var fe *Error
				switch {
				case err == nil && len(rt.Backends) == 0:
					t.Fatalf("lookup %q to %v: a route without backends", a, local)
				case err != nil && !errors.Is(err, route.ErrNotFound) && !errors.As(err, &fe):
					t.Fatalf("lookup %q to %v: %v: neither not found nor naming the file's line", a, local, err)
				case strings.ContainsAny(rt.Login, badLoginBytes):
					t.Fatalf("lookup %q to %v: login %q", a, local, rt.Login)
				}
			}
		}
	})
}
