package imap_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/listener"
)

// TestProxyTerminatedTLS: behind a trusted proxy that terminated the
// client's TLS and says so in its PROXY v2 header (PP2_TYPE_SSL with
// PP2_CLIENT_SSL: HAProxy's send-proxy-v2-ssl), the client's link counts
// as encrypted, as Dovecot takes it: LOGIN is offered without
// allow_plaintext_auth. Without the flag it is not.
func TestProxyTerminatedTLS(t *testing.T) {
	p := startProxy(t, &imap.Server{Server: gateway.Server{
		Router: routes(t, map[string][]string{}),
		Proxy:  &listener.ProxyPolicy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Required: true},
	}})
	for _, tc := range []struct {
		name      string
		clientSSL byte
		disabled  bool
	}{{"client over TLS", 0x01, false}, {"client in plain", 0x00, true}} {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a failure detector only
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 143})
		// PP2_TYPE_SSL: client flags, verify = 0, a version sub-TLV.
		ssl := append([]byte{tc.clientSSL, 0, 0, 0, 0, byte(proxyproto.PP2_SUBTYPE_SSL_VERSION), 0, 7}, "TLSv1.3"...)
		if err := h.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_SSL, Value: ssl}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteTo(c); err != nil {
			t.Fatal(err)
		}
		r := &rawClient{t: t, conn: c, r: newLineReader(c)}
		r.expectPrefix("* OK ")
		r.send("a CAPABILITY\r\n")
		if caps := r.expectPrefix("* CAPABILITY"); strings.Contains(caps, "LOGINDISABLED") != tc.disabled {
			t.Errorf("%s: %s; want LOGINDISABLED: %v", tc.name, caps, tc.disabled)
		}
	}
}
