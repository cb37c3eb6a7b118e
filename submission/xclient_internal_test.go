package submission

import (
	"net/netip"
	"testing"

	"github.com/pipegate/pipegate/gateway"
)

// TestXCLIENTLine: only the attributes the backend lists, values in
// xtext, IPv6 with "IPV6:", mapped IPv4 unmapped.
func TestXCLIENTLine(t *testing.T) {
	dovecot := []string{"ADDR", "PORT", "PROTO", "HELO", "LOGIN", "SESSION", "TTL", "TIMEOUT", "FORWARD"}
	postfix := []string{"NAME", "ADDR", "PORT", "PROTO", "HELO", "REVERSE_NAME", "LOGIN", "DESTADDR", "DESTPORT"}
	a := xclientAttrs{
		client: netip.MustParseAddrPort("10.1.2.3:5555"), local: netip.MustParseAddrPort("192.0.2.1:587"),
		helo: "client.test", esmtp: true, session: "abc", ttl: 4,
	}
	for _, tc := range []struct {
		name   string
		params []string
		a      xclientAttrs
		want   string
	}{
		{"dovecot", dovecot, a, "XCLIENT ADDR=10.1.2.3 PORT=5555 HELO=client.test PROTO=ESMTP SESSION=abc TTL=4"},
		{"postfix", postfix, a, "XCLIENT ADDR=10.1.2.3 PORT=5555 HELO=client.test PROTO=ESMTP DESTADDR=192.0.2.1 DESTPORT=587"},
		{"ipv6 and xtext", []string{"addr", "helo", "proto"}, xclientAttrs{
			client: netip.MustParseAddrPort("[2001:db8::1]:25"), helo: "a+b=c\xff",
		}, "XCLIENT ADDR=IPV6:2001:db8::1 HELO=a+2Bb+3Dc+FF PROTO=SMTP"},
		{"mapped", []string{"ADDR"}, xclientAttrs{client: netip.MustParseAddrPort("[::ffff:10.0.0.1]:1")}, "XCLIENT ADDR=10.0.0.1"},
		{"nothing listed", []string{"FORWARD"}, a, ""},
		{"postfix with login", postfix, withLogin(a, "alice+1@a.test"), "XCLIENT ADDR=10.1.2.3 PORT=5555 HELO=client.test PROTO=ESMTP DESTADDR=192.0.2.1 DESTPORT=587 LOGIN=alice+2B1@a.test"},
	} {
		if got := xclientLine(tc.params, tc.a); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func withLogin(a xclientAttrs, login string) xclientAttrs {
	a.login = login
	return a
}

// TestRender: each gateway.Error in its SMTP form, in one place.
func TestRender(t *testing.T) {
	for _, tc := range []struct {
		e    gateway.Error
		want string
	}{
		{gateway.Error{Code: gateway.CodeAuthFailed, Text: gateway.TextAuthFailed}, "535 5.7.8 Authentication credentials invalid"},
		{gateway.Error{Code: gateway.CodeAuthFailed, Text: "Account blocked\r\nX"}, "535 5.7.8 Account blocked  X"},
		{gateway.Error{Code: gateway.CodeAuthFailed, Text: "Go away", Detail: "550 5.7.1"}, "550 5.7.1 Go away"},
		{gateway.Error{Code: gateway.CodeAuthFailed, Detail: "535 4.7.0"}, "535 5.7.8 Authentication credentials invalid"}, // the enhanced code does not fit
		{gateway.Error{Code: gateway.CodeAuthFailed, Detail: "AUTHENTICATIONFAILED"}, "535 5.7.8 Authentication credentials invalid"},
		{gateway.Error{Code: gateway.CodeUnavailable, Text: gateway.TextUnavailable}, "454 4.7.0 Temporary authentication failure"},
		{gateway.Error{Code: gateway.CodePrivacyRequired}, "538 5.7.11 Encryption required for requested authentication mechanism"},
	} {
		code, enh, text := render(&tc.e)
		got := string(formatReply(code, enh, text))
		if got != tc.want+"\r\n" {
			t.Errorf("%+v: got %q, want %q", tc.e, got, tc.want+"\r\n")
		}
	}
}
