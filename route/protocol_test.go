package route

import (
	"strings"
	"testing"
)

func TestNewBackend(t *testing.T) {
	s := NewSchemes()
	pop3 := []ClientAddrMode{ClientAddrXCLIENT}
	s.Register("pop3", Scheme{Protocol: "pop3", TLS: TLSNone, Port: "110", ClientAddr: ClientAddrXCLIENT, ClientAddrModes: pop3})
	s.Register("pop3s", Scheme{Protocol: "pop3", TLS: TLSImplicit, Port: "995", ClientAddr: ClientAddrXCLIENT, ClientAddrModes: pop3})
	tests := []struct {
		protocol string
		tls      TLSMode
		host     string
		port     int
		want     Backend
	}{
		{"", TLSNone, "h", 0, Backend{Protocol: "imap", Addr: "h:143", ServerName: "h", ClientAddr: ClientAddrID}},
		{"imap", TLSImplicit, "h", 0, Backend{Protocol: "imap", Addr: "h:993", TLS: TLSImplicit, ServerName: "h", ClientAddr: ClientAddrID}},
		{"imap", TLSStartTLS, "::1", 1143, Backend{Protocol: "imap", Addr: "[::1]:1143", TLS: TLSStartTLS, ServerName: "::1", ClientAddr: ClientAddrID}},
		{"pop3", TLSNone, "h", 0, Backend{Protocol: "pop3", Addr: "h:110", ServerName: "h", ClientAddr: ClientAddrXCLIENT}},
		{"pop3", TLSImplicit, "10.0.0.1", 1995, Backend{Protocol: "pop3", Addr: "10.0.0.1:1995", TLS: TLSImplicit, ServerName: "10.0.0.1", ClientAddr: ClientAddrXCLIENT}},
	}
	for _, tt := range tests {
		got, err := s.NewBackend(tt.protocol, tt.tls, tt.host, tt.port)
		if err != nil || got != tt.want {
			t.Errorf("NewBackend(%q, %s, %q, %d) = %+v, %v; want %+v", tt.protocol, tt.tls, tt.host, tt.port, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		protocol string
		tls      TLSMode
		host     string
		port     int
		err      string
	}{
		{"pop3", TLSStartTLS, "h", 0, `no scheme for protocol "pop3" with TLS starttls`},
		{"sieve", TLSNone, "h", 0, `no scheme for protocol "sieve"`},
		{"imap", TLSNone, "h", 70000, "port 70000"},
		{"imap", TLSNone, "h/x", 1, `backend "imap://h/x:1"`},
		{"imap", TLSNone, "a%2Eb", 1, `host "a%2Eb": want an IP address or a name`}, // not decoded to a.b
		{"imap", TLSNone, "fe80::1%eth0", 1, `host "fe80::1%eth0"`},
	} {
		if _, err := s.NewBackend(tt.protocol, tt.tls, tt.host, tt.port); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("NewBackend(%q, %s, %q, %d): %v, want %q", tt.protocol, tt.tls, tt.host, tt.port, err, tt.err)
		}
	}
	if name, sc, ok := s.SchemeFor("pop3", TLSImplicit); !ok || name != "pop3s" || sc.Port != "995" {
		t.Errorf("SchemeFor(pop3, tls) = %q %+v %v", name, sc, ok)
	}
}
