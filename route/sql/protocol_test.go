package sql

import (
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/internal/routetest"
)

// TestRowBackendsProtocols: a host row makes a backend of the session's
// protocol, its scheme by the tls column, its port the scheme's when the
// row has none.
func TestRowBackendsProtocols(t *testing.T) {
	tests := []struct {
		row      map[string]string
		protocol string
		want     string
	}{
		{map[string]string{"host": "h"}, "imap", "imap://h:143"},
		{map[string]string{"host": "h", "tls": "tls"}, "imap", "imaps://h:993"},
		{map[string]string{"host": "h"}, "pop3", "pop3://h:110"},
		{map[string]string{"host": "h", "tls": "starttls"}, "pop3", "pop3+starttls://h:110"},
		{map[string]string{"host": "h", "tls": "tls", "port": "1995"}, "pop3", "pop3s://h:1995"},
		{map[string]string{"host": "h", "tls": "starttls"}, "sieve", "sieve+starttls://h:4190"},
		{map[string]string{"host": "h"}, "submission", "submission://h:587"},
		{map[string]string{"host": "h", "tls": "tls", "server_name": "smtp.a.test"}, "submission", "submissions://h:465?server_name=smtp.a.test"},
		{map[string]string{"backend": "imaps://h pop3s://h submissions://s"}, "pop3", "imaps://h:993 pop3s://h:995 submissions://s:465"},
	}
	for _, tt := range tests {
		bs, err := rowBackends(tt.row, tt.protocol)
		if err != nil {
			t.Errorf("%v %s: %v", tt.row, tt.protocol, err)
			continue
		}
		if got := routetest.Backends(route.Route{Backends: bs}); got != tt.want {
			t.Errorf("%v %s: %s, want %s", tt.row, tt.protocol, got, tt.want)
		}
	}
	if _, err := rowBackends(map[string]string{"host": "h"}, "gopher"); err == nil || !strings.Contains(err.Error(), `host: backend h: no scheme for protocol "gopher"`) {
		t.Errorf("unknown protocol: %v", err)
	}
}

// TestProtocolParameter: @protocol is the session's protocol, for a query
// that answers per protocol.
func TestProtocolParameter(t *testing.T) {
	s := newSource(t, "SELECT host, CASE @protocol WHEN 'imap' THEN port WHEN 'pop3' THEN 1110 END AS port, tls FROM routes WHERE account = lower(@account)")
	tests := []struct{ account, protocol, want string }{
		{"alice@a.test", "imap", "imap://127.0.0.1:14301"},
		{"alice@a.test", "", "imap://127.0.0.1:14301"},
		{"alice@a.test", "pop3", "pop3://127.0.0.1:1110"},
		{"alice@a.test", "sieve", "sieve://127.0.0.1:4190"},
		{"alice@a.test", "submission", "submission://127.0.0.1:587"},
		{"bob@a.test", "pop3", "pop3s://mail.a.test:1110"},
		{"bob@a.test", "submission", "submissions://mail.a.test:465"},
	}
	for _, tt := range tests {
		rt, err := lookup(t, s, route.Request{Protocol: tt.protocol, Account: tt.account})
		routetest.Check(t, routetest.Want{Account: tt.account + " " + tt.protocol, Backends: tt.want}, rt, err)
	}
}
