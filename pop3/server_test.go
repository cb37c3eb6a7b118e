package pop3_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/route"
)

// TestSchemes: importing pop3 registers its backend URL schemes.
func TestSchemes(t *testing.T) {
	for _, tc := range []struct {
		url, want, err string
		tls            route.TLSMode
		mode           route.ClientAddrMode
	}{
		{url: "pop3://mail.a.test", want: "mail.a.test:110", tls: route.TLSNone, mode: route.ClientAddrXCLIENT},
		{url: "pop3+starttls://mail.a.test", want: "mail.a.test:110", tls: route.TLSStartTLS, mode: route.ClientAddrXCLIENT},
		{url: "POP3S://mail.a.test", want: "mail.a.test:995", tls: route.TLSImplicit, mode: route.ClientAddrXCLIENT},
		{url: "pop3://10.0.0.1:1110?client_addr=none", want: "10.0.0.1:1110", mode: route.ClientAddrNone},
		{url: "pop3s://10.0.0.1?proxy=v1", want: "10.0.0.1:995", tls: route.TLSImplicit, mode: route.ClientAddrProxy},
		{url: "pop3://10.0.0.1?client_addr=id", err: "pop3 cannot pass the address that way"},
	} {
		b, err := route.ParseBackend(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || b.Protocol != "pop3" || b.Addr != tc.want || b.TLS != tc.tls || b.ClientAddr != tc.mode {
			t.Errorf("%s: %+v, %v", tc.url, b, err)
		}
	}
}

func TestNewMetrics(t *testing.T) {
	if m := pop3.NewMetrics(nil); m.Protocol() != "pop3" {
		t.Fatalf("protocol %q", m.Protocol())
	}
}

// TestGoodbyes: a client waiting for its next command is told why it is
// disconnected: the login timeout, Shutdown.
func TestGoodbyes(t *testing.T) {
	p := startProxy(t, &pop3.Server{Server: gateway.Server{Router: routes(t, nil), LoginTimeout: 50 * time.Millisecond}})
	c := dial(t, "", p.addr)
	c.expect("-ERR Disconnected for inactivity")
	c.expectClosed()

	p = startProxy(t, &pop3.Server{Server: gateway.Server{Router: routes(t, nil)}})
	c = dial(t, "", p.addr)
	c.multi("CAPA") // the session is being served
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.expect("-ERR [SYS/TEMP] Server shutting down")
	c.expectClosed()
}
