package file

import (
	"context"
	"net/netip"
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
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, a := range []string{"alice@a.test", "x@b.test", "", "@", "a@"} {
			req := route.Request{Account: a, ClientAddr: netip.MustParseAddrPort("10.1.2.3:4")}
			rt, err := s.Lookup(context.Background(), req)
			if err == nil && len(rt.Backends) == 0 {
				t.Fatalf("lookup %q: a route without backends", a)
			}
		}
	})
}
