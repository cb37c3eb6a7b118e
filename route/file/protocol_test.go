package file

import (
	"context"
	"testing"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/internal/routetest"
)

// TestRoutesOfSeveralProtocols: a rule may list backends of every
// registered scheme; the route gives them all, in order (the gateway
// keeps those of its session's protocol).
func TestRoutesOfSeveralProtocols(t *testing.T) {
	src, err := Parse("routes.yaml", []byte(`routes:
  - account: alice@a.test
    backends: [imap://h1, pop3://h1, sieve+starttls://h1, submission://h2]
  - domain: b.test
    backends: [imaps://h3, pop3s://h3, "submissions://h4?client_addr=proxy"]
default: [imap+starttls://h5, pop3+starttls://h5:1110, sieve://h5, submission+starttls://h5]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ account, want string }{
		{"alice@a.test", "imap://h1:143 pop3://h1:110 sieve+starttls://h1:4190 submission://h2:587"},
		{"bob@b.test", "imaps://h3:993 pop3s://h3:995 submissions://h4:465?proxy=v2"},
		{"carol@c.test", "imap+starttls://h5:143 pop3+starttls://h5:1110 sieve://h5:4190 submission+starttls://h5:587"},
	}
	for _, tt := range tests {
		for _, protocol := range []string{"imap", "pop3", "sieve", "submission"} {
			rt, err := src.Lookup(context.Background(), route.Request{Protocol: protocol, Account: tt.account})
			if err != nil {
				t.Fatal(err)
			}
			if got := routetest.Backends(rt); got != tt.want {
				t.Errorf("%s %s: %s, want %s", protocol, tt.account, got, tt.want)
			}
		}
	}
	// The client_addr default is the scheme's: id for IMAP, xclient for the others.
	rt, _ := src.Lookup(context.Background(), route.Request{Protocol: "pop3", Account: "alice@a.test"})
	for _, b := range rt.Backends {
		want := route.ClientAddrXCLIENT
		if b.Protocol == "imap" {
			want = route.ClientAddrID
		}
		if b.ClientAddr != want {
			t.Errorf("%s: client_addr %s, want %s", b, b.ClientAddr, want)
		}
	}
}
