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
		{"imap://127.0.0.1:14301", Backend{Protocol: "imap", Addr: "127.0.0.1:14301", TLS: TLSNone, ServerName: "127.0.0.1", SendID: true}, ""},
		{"imap+starttls://mail.a.test", Backend{Protocol: "imap", Addr: "mail.a.test:143", TLS: TLSStartTLS, ServerName: "mail.a.test", SendID: true}, "imap+starttls://mail.a.test:143"},
		{"imaps://mail.a.test", Backend{Protocol: "imap", Addr: "mail.a.test:993", TLS: TLSImplicit, ServerName: "mail.a.test", SendID: true}, "imaps://mail.a.test:993"},
		{"IMAPS://[::1]:9993/", Backend{Protocol: "imap", Addr: "[::1]:9993", TLS: TLSImplicit, ServerName: "::1", SendID: true}, "imaps://[::1]:9993"},
		{"imaps://127.0.0.1:993?server_name=mail.a.test", Backend{Protocol: "imap", Addr: "127.0.0.1:993", TLS: TLSImplicit, ServerName: "mail.a.test", SendID: true}, ""},
		{"imap://h:1?id=0&proxy=v2", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", SendID: false, SendProxy: "v2"}, ""},
		{"imap://h:1?id=off&proxy=v1", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", SendID: false, SendProxy: "v1"}, "imap://h:1?id=0&proxy=v1"},
		{"imap://h:1?id=1", Backend{Protocol: "imap", Addr: "h:1", ServerName: "h", SendID: true}, "imap://h:1"},
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
		{"pop3://h:110", `unknown scheme "pop3"`},
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
		{"imap://h:1?tls=on", `unknown parameter "tls"`},
		{"imap://h:port", "backend"},
		{"imap://%zz", "backend"},
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

func FuzzParseBackend(f *testing.F) {
	f.Add("imaps://127.0.0.1:993?server_name=x&id=0&proxy=v1")
	f.Add("imap+starttls://[::1]")
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
