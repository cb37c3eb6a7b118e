package route

import (
	"strings"
	"testing"
)

func TestParseBackend(t *testing.T) {
	tests := []struct {
		in   string
		want Backend
		str  string // String(); "" = in
	}{
		{"imap://127.0.0.1:14301", Backend{Protocol: "imap", Addr: "127.0.0.1:14301", TLS: TLSNone, ServerName: "127.0.0.1", ClientAddr: ClientAddrID}, ""},
		{"imap+starttls://mail.a.test", Backend{Protocol: "imap", Addr: "mail.a.test:143", TLS: TLSStartTLS, ServerName: "mail.a.test", ClientAddr: ClientAddrID}, "imap+starttls://mail.a.test:143"},
		{"imaps://mail.a.test", Backend{Protocol: "imap", Addr: "mail.a.test:993", TLS: TLSImplicit, ServerName: "mail.a.test", ClientAddr: ClientAddrID}, "imaps://mail.a.test:993"},
		{"IMAPS://[::1]:9993/", Backend{Protocol: "imap", Addr: "[::1]:9993", TLS: TLSImplicit, ServerName: "::1", ClientAddr: ClientAddrID}, "imaps://[::1]:9993"},
		{"imaps://127.0.0.1:993?server_name=mail.a.test", Backend{Protocol: "imap", Addr: "127.0.0.1:993", TLS: TLSImplicit, ServerName: "mail.a.test", ClientAddr: ClientAddrID}, ""},
		{"imap://h:1?id=0&proxy=v2", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", ClientAddr: ClientAddrProxy, ProxyVersion: "v2"}, "imap://h:1?proxy=v2"},
		{"imap://h:1?id=off&proxy=v1", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", ClientAddr: ClientAddrProxy, ProxyVersion: "v1"}, "imap://h:1?proxy=v1"},
		{"imap://h:1?id=0", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", ClientAddr: ClientAddrNone}, "imap://h:1?client_addr=none"},
		{"imap://h:1?client_addr=none", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", ClientAddr: ClientAddrNone}, ""},
		{"imap://h:1?client_addr=proxy", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", ClientAddr: ClientAddrProxy, ProxyVersion: "v2"}, "imap://h:1?proxy=v2"},
		{"imap://h:1?client_addr=proxy&proxy=v1", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", ClientAddr: ClientAddrProxy, ProxyVersion: "v1"}, "imap://h:1?proxy=v1"},
		{"imap://h:1?id=1", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", ClientAddr: ClientAddrID}, "imap://h:1"},
		{"imap://[fe80::1%25eth0]:143", Backend{Protocol: "imap", Addr: "[fe80::1%eth0]:143", ServerName: "fe80::1%eth0", ClientAddr: ClientAddrID}, ""},
		{"imaps://xn--mail-d1a.test", Backend{Protocol: "imap", Addr: "xn--mail-d1a.test:993", TLS: TLSImplicit, ServerName: "xn--mail-d1a.test", ClientAddr: ClientAddrID}, "imaps://xn--mail-d1a.test:993"},
		{"pool:shared", Backend{Pool: "shared"}, ""},
		{"pool:A-b_9", Backend{Pool: "A-b_9"}, ""},
	}
	for _, tt := range tests {
		got, err := ParseBackend(tt.in)
		if err != nil {
			t.Errorf("ParseBackend(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseBackend(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		str := tt.str
		if str == "" {
			str = tt.in
		}
		if got.String() != str {
			t.Errorf("ParseBackend(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
		again, err := ParseBackend(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", tt.in, again, err)
		}
	}
}

func TestParseBackendErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pop3://h:110", `unknown scheme "pop3" (want one of imap, imap+starttls, imaps)`},
		{"127.0.0.1:143", "backend"},
		{"mail.a.test:143", "unknown scheme"},
		{"imap://", "want SCHEME://HOST:PORT"},
		{"imap://:143", "no host"},
		{"imap://h:0", "want 1-65535"},
		{"imap://h:70000", "want 1-65535"},
		{"imap://::", "host"},
		{"imaps://h:993?server_name=", "server_name is empty"},
		{"imap://h:1/INBOX", "want SCHEME://HOST:PORT"},
		{"imap://user@h:1", "want SCHEME://HOST:PORT"},
		{"imap://h:1?id=maybe", `id="maybe"`},
		{"imap://h:1?proxy=v3", `proxy="v3"`},
		{"imap://h:1?client_addr=xclient", `imap cannot pass the address that way`},
		{"imap://h:1?client_addr=smoke", `client_addr="smoke"`},
		{"imap://h:1?client_addr=id&proxy=v2", `disagree`},
		{"imap://h:1?client_addr=id&id=0", `give client_addr only`},
		{"imap://h:1?tls=on", `unknown parameter "tls"`},
		{"imap://h:port", "backend"},
		{"imap://%zz", "backend"},
		{"imap://a%2525:1", `host "a%25": want an IP address or a name`},
		{"imap://%C3%A9x", `host "éx": want an IP address or a name`},
		{"imap://a!b:1", `host "a!b"`},
		{"pool:", `pool name ""`},
		{"pool:a/b", `pool name "a/b"`},
		{"pool:" + strings.Repeat("p", 65), "pool name"},
	}
	for _, tt := range tests {
		_, err := ParseBackend(tt.in)
		if err == nil {
			t.Errorf("ParseBackend(%q): no error", tt.in)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "backend") {
			t.Errorf("ParseBackend(%q): %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

// TestSchemes: a protocol registers its schemes in a table of its own (or
// DefaultSchemes); route does not know them in advance.
func TestSchemes(t *testing.T) {
	s := NewSchemes()
	if _, err := s.ParseBackend("pop3s://h"); err == nil {
		t.Fatal("pop3s known before it was registered")
	}
	s.Register("pop3s", Scheme{Protocol: "pop3", TLS: TLSImplicit, Port: "995", ClientAddr: ClientAddrXCLIENT, ClientAddrModes: []ClientAddrMode{ClientAddrXCLIENT}})
	b, err := s.ParseBackend("POP3S://mail.a.test")
	if err != nil {
		t.Fatal(err)
	}
	want := Backend{Protocol: "pop3", Addr: "mail.a.test:995", TLS: TLSImplicit, ServerName: "mail.a.test", ClientAddr: ClientAddrXCLIENT}
	if b != want {
		t.Fatalf("got %+v, want %+v", b, want)
	}
	if _, err := s.ParseBackend("pop3s://h?client_addr=id"); err == nil || !strings.Contains(err.Error(), "pop3 cannot") {
		t.Fatalf("client_addr=id for pop3: %v", err)
	}
}

func FuzzParseBackend(f *testing.F) {
	f.Add("imaps://127.0.0.1:993?server_name=x&id=0&proxy=v1")
	f.Add("imap+starttls://[::1]")
	f.Add("imap://[fe80::1%25eth0]:143")
	f.Add("imap://a%2525:1")
	f.Add("imap://%C3%A9x")
	f.Add("imaps://mail-1.example_2.test:993?client_addr=none")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBackend(s)
		if err != nil {
			return
		}
		again, err := ParseBackend(b.String())
		if err != nil {
			t.Fatalf("ParseBackend(%q).String() = %q does not parse: %v", s, b.String(), err)
		}
		if again != b {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, b)
		}
	})
}

func TestParseTLSMode(t *testing.T) {
	for word, want := range map[string]TLSMode{
		"": TLSNone, "none": TLSNone, "Plain": TLSNone, "STARTTLS": TLSStartTLS,
		"tls": TLSImplicit, "SSL": TLSImplicit, "implicit": TLSImplicit,
	} {
		if got, err := ParseTLSMode(word); err != nil || got != want {
			t.Errorf("ParseTLSMode(%q) = %v, %v; want %v", word, got, err, want)
		}
	}
	for _, word := range []string{" tls", "tls1.3", "maybe", "yes"} {
		if _, err := ParseTLSMode(word); err == nil || err.Error() != "want none, starttls or tls" {
			t.Errorf("ParseTLSMode(%q): %v; want the list of words", word, err)
		}
	}
}
