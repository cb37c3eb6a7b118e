package sieve_test

import (
	"testing"

	"github.com/pipegate/pipegate/route"
	_ "github.com/pipegate/pipegate/sieve" // registers sieve:// and sieve+starttls://
)

func TestSchemes(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want route.Backend
	}{
		{"sieve://mail.example", route.Backend{Protocol: "sieve", Addr: "mail.example:4190", TLS: route.TLSNone, ServerName: "mail.example", ClientAddr: route.ClientAddrXCLIENT}},
		{"sieve+starttls://10.0.0.1:2000", route.Backend{Protocol: "sieve", Addr: "10.0.0.1:2000", TLS: route.TLSStartTLS, ServerName: "10.0.0.1", ClientAddr: route.ClientAddrXCLIENT}},
		{"sieve://h?client_addr=none", route.Backend{Protocol: "sieve", Addr: "h:4190", ServerName: "h", ClientAddr: route.ClientAddrNone}},
		{"sieve://h?proxy=v1", route.Backend{Protocol: "sieve", Addr: "h:4190", ServerName: "h", ClientAddr: route.ClientAddrProxy, ProxyVersion: "v1"}},
	} {
		b, err := route.ParseBackend(tc.url)
		if err != nil || b != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.url, b, err, tc.want)
		}
		if back, err := route.ParseBackend(b.String()); err != nil || back != b {
			t.Errorf("%s: String %s parses as %+v, %v", tc.url, b, back, err)
		}
	}
	if _, err := route.ParseBackend("sieve://h?client_addr=id"); err == nil {
		t.Error("client_addr=id accepted for sieve")
	}
	if _, err := route.ParseBackend("sieves://h"); err == nil {
		t.Error("sieves:// accepted: ManageSieve has no implicit-TLS port")
	}
	b, err := route.NewBackend("sieve", route.TLSStartTLS, "h", 0)
	if err != nil || b.Addr != "h:4190" || b.TLS != route.TLSStartTLS {
		t.Errorf("NewBackend: %+v, %v", b, err)
	}
}
