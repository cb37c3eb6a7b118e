package authhttp

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/internal/routetest"
)

// TestProtocols: Auth-Protocol names the session's protocol as nginx does
// (smtp for submission), and Auth-Server/Auth-Port become a backend of
// that protocol, its TLS mode from X-Pipegate-Backend-TLS.
func TestProtocols(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSource(t, Config{URL: srv.URL})

	tests := []struct {
		protocol, header string // Request.Protocol, the Auth-Protocol sent
		tls              string // X-Pipegate-Backend-TLS answered
		want             string // the backend
	}{
		{"", "imap", "", "imap://10.0.0.1:1100"},
		{"imap", "imap", "tls", "imaps://10.0.0.1:1100"},
		{"pop3", "pop3", "", "pop3://10.0.0.1:1100"},
		{"pop3", "pop3", "starttls", "pop3+starttls://10.0.0.1:1100"},
		{"pop3", "pop3", "tls", "pop3s://10.0.0.1:1100"},
		{"sieve", "sieve", "none", "sieve://10.0.0.1:1100"},
		{"sieve", "sieve", "starttls", "sieve+starttls://10.0.0.1:1100"},
		{"submission", "smtp", "", "submission://10.0.0.1:1100"},
		{"submission", "smtp", "starttls", "submission+starttls://10.0.0.1:1100"},
		{"submission", "smtp", "ssl", "submissions://10.0.0.1:1100"},
	}
	for _, tt := range tests {
		t.Run(tt.protocol+"/"+tt.tls, func(t *testing.T) {
			rec.set(200, "Auth-Status", "OK", "Auth-Server", "10.0.0.1", "Auth-Port", "1100", "X-Pipegate-Backend-TLS", tt.tls)
			rt, err := s.Lookup(context.Background(), route.Request{Protocol: tt.protocol, Account: "alice@a.test"})
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.request().Get("Auth-Protocol"); got != tt.header {
				t.Errorf("Auth-Protocol: %q, want %q", got, tt.header)
			}
			if got := routetest.Backends(rt); got != tt.want {
				t.Errorf("backend %s, want %s", got, tt.want)
			}
			want := tt.protocol
			if want == "" {
				want = "imap"
			}
			b := rt.Backends[0]
			if b.Protocol != want || b.ServerName != "10.0.0.1" {
				t.Errorf("backend %+v: want protocol %s, server name 10.0.0.1", b, want)
			}
			if mode := b.ClientAddr; want != "imap" && mode != route.ClientAddrXCLIENT || want == "imap" && mode != route.ClientAddrID {
				t.Errorf("client_addr %s for %s", mode, want)
			}
		})
	}
}

// TestProtocolBackendList: X-Pipegate-Backend may name backends of several
// protocols (the gateway keeps its session's); a protocol without schemes
// is an error, not an IMAP backend.
func TestProtocolBackendList(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSource(t, Config{URL: srv.URL})

	rec.set(200, "Auth-Status", "OK", "X-Pipegate-Backend", "imaps://h1 pop3s://h1 submissions://h2?server_name=smtp.a.test")
	rt, err := s.Lookup(context.Background(), route.Request{Protocol: "pop3", Account: "alice@a.test"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := routetest.Backends(rt), "imaps://h1:993 pop3s://h1:995 submissions://h2:465?server_name=smtp.a.test"; got != want {
		t.Fatalf("backends %s, want %s", got, want)
	}

	rec.set(200, "Auth-Status", "OK", "Auth-Server", "10.0.0.1", "Auth-Port", "25")
	_, err = s.Lookup(context.Background(), route.Request{Protocol: "gopher", Account: "alice@a.test"})
	if err == nil || !strings.Contains(err.Error(), `no scheme for protocol "gopher"`) {
		t.Fatalf("unknown protocol: %v", err)
	}
	if got := rec.request().Get("Auth-Protocol"); got != "gopher" {
		t.Fatalf("Auth-Protocol %q", got)
	}
}
