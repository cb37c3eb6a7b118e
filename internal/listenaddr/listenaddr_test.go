package listenaddr

import (
	"net"
	"strconv"
	"testing"
)

func TestConflict(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:1143", "127.0.0.1:1143", true},
		{"0.0.0.0:11143", ":11143", true},
		{"[::]:11143", ":11143", true},
		{"[::]:11143", "0.0.0.0:11143", true},
		{"0.0.0.0:11143", "127.0.0.1:11143", true},
		{"127.0.0.1:11143", "[::]:11143", true},
		{"[::1]:11143", ":11143", true},
		{"localhost:11143", ":11143", true},
		{"[::ffff:0.0.0.0]:11143", "127.0.0.1:11143", true},
		{"127.0.0.1:11143", "[::ffff:127.0.0.1]:11143", true},
		{"[::1]:11143", "[0:0::1]:11143", true},
		{"127.0.0.1:011143", "127.0.0.1:11143", true},
		{"127.0.0.1:imap", "127.0.0.1:143", true},
		{"localhost:11143", "LOCALHOST:11143", true},
		{"unix:/run/p.sock", "unix:/run/p.sock", true},
		{"unix:/run/p.sock", "unix:/run/./x/../p.sock", true},
		{"unix:run/p.sock", "unix:./run/p.sock", true},
		{"nonsense", "nonsense", true},

		{"127.0.0.1:11143", "127.0.0.2:11143", false},
		{"127.0.0.1:11143", "[::1]:11143", false},
		{"127.0.0.1:11143", "127.0.0.1:11144", false},
		{":11143", ":11144", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		{":0", "0.0.0.0:0", false},
		{"localhost:11143", "127.0.0.1:11143", false}, // names are not resolved
		{"a.example:11143", "b.example:11143", false},
		{"unix:/run/a.sock", "unix:/run/b.sock", false},
		{"unix:/run/p.sock", ":11143", false},
		{"unix:", "unix:", false},
		{"nonsense", "other", false},
		{"127.0.0.1:99999", "127.0.0.1:99999", true}, // not a port: the same text
		{"127.0.0.1:99999", ":99999", false},
	} {
		if got := Conflict(tt.a, tt.b); got != tt.want {
			t.Errorf("Conflict(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := Conflict(tt.b, tt.a); got != tt.want {
			t.Errorf("Conflict(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestConflictError(t *testing.T) {
	got := ConflictError(":11143", "listen[0].addr", "0.0.0.0:11143").Error()
	if want := `":11143": listen[0].addr ("0.0.0.0:11143") listens there too`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct{ addr, err string }{
		{"127.0.0.1:9100", ""},
		{":9100", ""},
		{"[::1]:0", ""},
		{"localhost:65535", ""},
		{"0.0.0.0:9100", ""},
		{"nonsense", `"nonsense": want HOST:PORT (address nonsense: missing port in address)`},
		{"127.0.0.1", `"127.0.0.1": want HOST:PORT (address 127.0.0.1: missing port in address)`},
		{"::1:9100", `"::1:9100": an IPv6 address goes in brackets: "[::1]:9100"`},
		{"fe80::1:x:9100", `"fe80::1:x:9100": want HOST:PORT (address fe80::1:x:9100: too many colons in address)`},
		{"[fe80::1%lo]:9100", ""}, // a zone, as net.Listen takes it
		{"unix:/run/pipegate/imap.sock", `"unix:/run/pipegate/imap.sock": want HOST:PORT; Unix sockets are not served here`},
		{"127.0.0.1:99999", `"127.0.0.1:99999": port "99999" is not a number from 0 to 65535`},
		{"127.0.0.1:-1", `"127.0.0.1:-1": port "-1" is not a number from 0 to 65535`},
		{"127.0.0.1:", `"127.0.0.1:": port "" is not a number from 0 to 65535`},
		{"127.0.0.1:http", `"127.0.0.1:http": port "http" is not a number from 0 to 65535`},
		{"metrics.example:9100", `"metrics.example:9100": host must be an IP address (or empty for all)`},
	} {
		err := Check(tt.addr)
		if tt.err == "" {
			if err != nil {
				t.Errorf("Check(%q) = %v", tt.addr, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.err {
			t.Errorf("Check(%q) = %v\nwant %s", tt.addr, err, tt.err)
		}
	}
}

// FuzzConflict: Conflict is symmetric, never panics, and an address Check
// accepts conflicts with itself unless its port is 0.
func FuzzConflict(f *testing.F) {
	for _, s := range [][2]string{
		{"0.0.0.0:11143", ":11143"}, {"127.0.0.1:1", "[::ffff:127.0.0.1]:1"}, {"unix:/a", "unix:/b/../a"},
		{"localhost:imap", "[::]:143"}, {":0", ":0"}, {"[fe80::1%eth0]:1", "[fe80::1%eth1]:1"}, {"x", "unix:"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if Conflict(a, b) != Conflict(b, a) {
			t.Fatalf("Conflict(%q, %q) = %v, but not the other way round", a, b, Conflict(a, b))
		}
		if Check(a) == nil {
			_, port, _ := net.SplitHostPort(a)
			if n, _ := strconv.Atoi(port); n != 0 && !Conflict(a, a) {
				t.Fatalf("Conflict(%q, itself) = false", a)
			}
		}
	})
}
