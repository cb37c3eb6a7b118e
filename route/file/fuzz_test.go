package file

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

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
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, a := range []string{"alice@a.test", "x@b.test", "", "@", "a@", "x-oldbox@m1.test", "a:b/c@d%e\r\n"} {
			req := route.Request{Account: a, ClientAddr: netip.MustParseAddrPort("10.1.2.3:4")}
			rt, err := s.Lookup(context.Background(), req)
			var fe *Error
			switch {
			case err == nil && len(rt.Backends) == 0:
				t.Fatalf("lookup %q: a route without backends", a)
			case err != nil && !errors.Is(err, route.ErrNotFound) && !errors.As(err, &fe):
				t.Fatalf("lookup %q: %v: neither not found nor naming the file's line", a, err)
			case strings.ContainsAny(rt.Login, badLoginBytes):
				t.Fatalf("lookup %q: login %q", a, rt.Login)
			}
		}
	})
}
