package file

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// TestListItemNamedRight: in a list where an earlier item is not a
// usable string, a later bad item is still named by its own index
// and line.
func TestListItemNamedRight(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"routes:\n  - account: x@a.test\n    backends:\n      - \"\"\n      - gopher://h:2\n",
			"routes.yaml:5: routes[0].backends[1]: "},
		{"routes:\n  - domain: a.test\n    network:\n      - \"\"\n      - 10.0.0.0/33\n    backend: imap://h:1\n",
			"routes.yaml:5: routes[0].network[1]: "},
	} {
		_, err := Parse("routes.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q:\n err = %v\nwant it to contain %q", tt.yaml, err, tt.want)
		}
	}
}

// TestZonedClientMatchesNetwork: a client on a link-local address
// carries its zone (fe80::1%eth0, as net.TCPAddr gives it). parsePrefix
// drops zones from the rules; the lookup drops the client's too,
// so that the rule matches.
func TestZonedClientMatchesNetwork(t *testing.T) {
	s, err := Parse("routes.yaml", []byte("routes:\n  - network: fe80::/10\n    backend: imap://127.0.0.1:14302\ndefault: imap://127.0.0.1:14301\n"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := s.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@a.test",
		ClientAddr: netip.MustParseAddrPort("[fe80::1%eth0]:5000")})
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Backends[0].Addr; got != "127.0.0.1:14302" {
		t.Fatalf("client fe80::1%%eth0 routed to %s (the default); want 127.0.0.1:14302 (network fe80::/10)", got)
	}
}
