package redis

import (
	"testing"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/internal/routetest"
)

// TestValueOfSeveralProtocols: a value may list backends of every
// registered scheme (the gateway keeps those of its session's protocol).
func TestValueOfSeveralProtocols(t *testing.T) {
	bs, err := parseValue("imaps://h1 pop3s://h1 sieve+starttls://h1 submission+starttls://h2:1587")
	if err != nil {
		t.Fatal(err)
	}
	want := "imaps://h1:993 pop3s://h1:995 sieve+starttls://h1:4190 submission+starttls://h2:1587"
	if got := routetest.Backends(route.Route{Backends: bs}); got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	for _, b := range bs[1:] {
		if b.ClientAddr != route.ClientAddrXCLIENT {
			t.Errorf("%s: client_addr %s, want xclient", b, b.ClientAddr)
		}
	}
}
