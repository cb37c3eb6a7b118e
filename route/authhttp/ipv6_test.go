package authhttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// TestClientIPNoZone: Client-IP is the client's address as nginx sends
// it ($remote_addr): "::1" for an IPv6 client, the IPv4 address for an
// IPv4-mapped one, and no zone for a link-local one (nginx's
// ngx_sock_ntop prints none; an auth service parsing it as an address
// fails on "%eth0").
func TestClientIPNoZone(t *testing.T) {
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Client-IP"):
		default:
		}
		w.Header().Set("Auth-Status", "Invalid login")
	}))
	defer ts.Close()
	s, err := New(Config{URL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ client, want string }{
		{"[::1]:5555", "::1"},
		{"[::ffff:192.0.2.7]:5555", "192.0.2.7"},
		{"[fe80::1%eth0]:5555", "fe80::1"},
	} {
		_, _ = s.Lookup(context.Background(), route.Request{Account: "a@a.test", Protocol: "imap", ClientAddr: netip.MustParseAddrPort(tc.client)})
		if ip := <-got; ip != tc.want {
			t.Errorf("client %s: Client-IP %q, want %q", tc.client, ip, tc.want)
		}
	}
}
