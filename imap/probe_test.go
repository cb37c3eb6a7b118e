package imap_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/route"
)

// TestProbe: the health probe of a pool member logs in a test account,
// over STARTTLS when the backend URL asks, and fails on a wrong password,
// an unverifiable certificate or a dead port.
func TestProbe(t *testing.T) {
	pki := newPKI(t)
	be := startBackend(t, map[string]string{"probe@a.test": "ppass"}, backendOpts{tls: pki.server})
	srv := &imap.Server{Server: gateway.Server{BackendTLS: &tls.Config{RootCAs: pki.ca.Pool()}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parse := func(u string) route.Backend {
		b, err := route.ParseBackend(u)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, u := range []string{"imap://" + be.addr, "imap+starttls://" + be.addr} {
		if err := srv.Probe(ctx, parse(u), "probe@a.test", "ppass"); err != nil {
			t.Errorf("%s: %v", u, err)
		}
		if err := srv.Probe(ctx, parse(u), "", ""); err != nil {
			t.Errorf("%s, greeting only: %v", u, err)
		}
	}
	cases := []struct{ url, user, pass, want string }{
		{"imap://" + be.addr, "probe@a.test", "wrong", "LOGIN of the probe account refused"},
		{"imap+starttls://" + be.addr + "?server_name=other.test", "", "", "certificate"},
		{"imap://" + deadAddr(t), "", "", "refused"},
	}
	for _, tc := range cases {
		err := srv.Probe(ctx, parse(tc.url), tc.user, tc.pass)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.url, err, tc.want)
		}
	}
}
