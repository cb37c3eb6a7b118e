package ldap

import (
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/pipegate/pipegate/route/internal/routetest"
)

// TestEntryRouteProtocols: a host becomes a backend of the request's
// protocol; its port comes from the protocol's attribute, its configured
// port, or its scheme; port and port_attr stay IMAP's.
func TestEntryRouteProtocols(t *testing.T) {
	src, err := New(Config{
		URLs: []string{"ldap://127.0.0.1:1"}, BaseDN: "dc=a,dc=test",
		HostAttr: "mailHost", TLSAttr: "mailTLS", PortAttr: "imapPort", Port: 1143,
		HostAttrs: map[string]string{"submission": "submissionHost"},
		PortAttrs: map[string]string{"pop3": "pop3Port"},
		Ports:     map[string]int{"sieve": 14190},
	})
	if err != nil {
		t.Fatal(err)
	}
	plain := goldap.NewEntry("uid=a,dc=a,dc=test", map[string][]string{
		"mailHost": {"m1.a.test"}, "pop3Port": {"1110"}, "submissionHost": {"smtp1.a.test", "smtp2.a.test"},
	})
	tls := goldap.NewEntry("uid=b,dc=a,dc=test", map[string][]string{
		"mailHost": {"m2.a.test"}, "mailTLS": {"tls"}, "imapPort": {"10993"},
	})
	starttls := goldap.NewEntry("uid=c,dc=a,dc=test", map[string][]string{"mailHost": {"m3.a.test"}, "mailTLS": {"starttls"}})
	tests := []struct {
		entry    *goldap.Entry
		protocol string
		want     string
	}{
		{plain, "", "imap://m1.a.test:1143"},
		{plain, "imap", "imap://m1.a.test:1143"},
		{plain, "pop3", "pop3://m1.a.test:1110"},
		{plain, "sieve", "sieve://m1.a.test:14190"},
		{plain, "submission", "submission://smtp1.a.test:587 submission://smtp2.a.test:587"},
		{tls, "imap", "imaps://m2.a.test:10993"},
		{tls, "pop3", "pop3s://m2.a.test:995"},
		{tls, "submission", "submissions://m2.a.test:465"}, // no submissionHost: mailHost
		{starttls, "pop3", "pop3+starttls://m3.a.test:110"},
		{starttls, "sieve", "sieve+starttls://m3.a.test:14190"},
		{starttls, "submission", "submission+starttls://m3.a.test:587"},
	}
	for _, tt := range tests {
		rt, err := src.entryRoute(tt.entry, tt.protocol)
		if err != nil {
			t.Errorf("%s %s: %v", tt.entry.DN, tt.protocol, err)
			continue
		}
		if got := routetest.Backends(rt); got != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.entry.DN, tt.protocol, got, tt.want)
		}
		if p := rt.Backends[0].Protocol; tt.protocol != "" && p != tt.protocol {
			t.Errorf("%s %s: protocol %s", tt.entry.DN, tt.protocol, p)
		}
	}
	if _, err := src.entryRoute(plain, "gopher"); err == nil || !strings.Contains(err.Error(), `no scheme for protocol "gopher"`) {
		t.Errorf("unknown protocol: %v", err)
	}
	bad := goldap.NewEntry("uid=d,dc=a,dc=test", map[string][]string{"mailHost": {"m4"}, "pop3Port": {"0"}})
	if _, err := src.entryRoute(bad, "pop3"); err == nil || !strings.Contains(err.Error(), "pop3Port") {
		t.Errorf("bad port: %v", err)
	}
}

func TestPerProtocolConfigErrors(t *testing.T) {
	ok := Config{URLs: []string{"ldap://127.0.0.1:389"}, BaseDN: "dc=a,dc=test", HostAttr: "mailHost"}
	tests := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Ports = map[string]int{"pop3": 0} }, "ports: pop3: 0"},
		{func(c *Config) { c.Ports = map[string]int{"POP3": 110} }, "ports: POP3"},
		{func(c *Config) { c.PortAttrs = map[string]string{"pop3": ""} }, "port_attrs"},
		{func(c *Config) { c.HostAttrs = map[string]string{"": "x"} }, "host_attrs"},
		{func(c *Config) { c.Port = 1; c.Ports = map[string]int{"imap": 2} }, "ports: imap and port"},
		{func(c *Config) { c.PortAttr = "a"; c.PortAttrs = map[string]string{"imap": "b"} }, "port_attrs: imap and port_attr"},
		{func(c *Config) { c.HostAttr = ""; c.BackendAttr = "b"; c.Ports = map[string]int{"pop3": 1} }, "ports: goes with host_attr"},
	}
	for _, tt := range tests {
		cfg := ok
		tt.edit(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", cfg, err, tt.want)
		}
	}
	// The caller's maps are not changed by folding port and port_attr in.
	ports := map[string]int{"pop3": 1110}
	if _, err := New(Config{URLs: ok.URLs, BaseDN: ok.BaseDN, HostAttr: "h", Port: 1143, Ports: ports}); err != nil || len(ports) != 1 {
		t.Fatalf("%v %v", err, ports)
	}
}
