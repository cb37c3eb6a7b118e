package authhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/route"
)

// serveUnix runs net/http's Server on a Unix socket in a fresh temporary
// directory; it records each request's Host and URI on got.
func serveUnix(t *testing.T, got chan<- string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "auth.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Host + " " + r.RequestURI + " " + r.Header.Get("Auth-User")
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("Auth-Server", "127.0.0.1")
		w.Header().Set("Auth-Port", "143")
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return sock
}

// TestUnixSocket: "unix:/path:/uri", nginx's spelling, reaches a service
// listening on that socket, with Host "localhost" and the URI as given
// ("/" when none is given, as nginx); a socket nobody listens on is an
// error naming the URL, not a refusal.
func TestUnixSocket(t *testing.T) {
	got := make(chan string, 4)
	sock := serveUnix(t, got)
	for _, tc := range []struct{ url, want string }{
		{"unix:" + sock + ":/auth?via=unix", "localhost /auth?via=unix alice@a.test"},
		{"UNIX:" + sock + ":/auth", "localhost /auth alice@a.test"},
		{"unix:" + sock, "localhost / alice@a.test"},
		{"unix:" + sock + ":", "localhost / alice@a.test"},
	} {
		s := newSource(t, Config{URL: tc.url})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rt, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
		cancel()
		if err != nil {
			t.Fatalf("%s: Lookup: %v", tc.url, err)
		}
		if len(rt.Backends) != 1 || rt.Backends[0].Addr != "127.0.0.1:143" {
			t.Errorf("%s: route %+v, want the service's 127.0.0.1:143", tc.url, rt)
		}
		if g := <-got; g != tc.want {
			t.Errorf("%s: the service saw %q, want %q", tc.url, g, tc.want)
		}
	}

	gone := filepath.Join(t.TempDir(), "nobody.sock")
	s := newSource(t, Config{URL: "unix:" + gone + ":/auth"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
	if _, denied := errors.AsType[*route.Denied](err); err == nil || denied || !strings.Contains(err.Error(), "unix:"+gone+":/auth") {
		t.Fatalf("no service on the socket: err = %v, want an error (not a denial) naming the URL", err)
	}
}

// TestParseURL: the URLs New takes, and the problem each bad one is
// told with. A unix: path ends at the first ':' after "unix:", as nginx's
// ngx_parse_unix_domain_url reads it.
func TestParseURL(t *testing.T) {
	long := "/" + strings.Repeat("s", maxSocketPath) // one byte too many
	for _, tt := range []struct {
		url, target, sock, err string
	}{
		{"http://127.0.0.1:9000/auth", "http://127.0.0.1:9000/auth", "", ""},
		{"https://auth.a.test/auth", "https://auth.a.test/auth", "", ""},
		{"unix:/run/auth.sock:/auth", "http://localhost/auth", "/run/auth.sock", ""},
		{"unix:/run/auth.sock:/a/b?c=d&e", "http://localhost/a/b?c=d&e", "/run/auth.sock", ""},
		{"Unix:/run/auth.sock:/auth", "http://localhost/auth", "/run/auth.sock", ""},
		{"unix:/run/auth.sock", "http://localhost/", "/run/auth.sock", ""},
		{"unix:/run/auth.sock:/x:y", "http://localhost/x:y", "/run/auth.sock", ""},
		{"unix:" + long[:maxSocketPath] + ":/auth", "http://localhost/auth", long[:maxSocketPath], ""},

		{"unix:", "", "", `url "unix:": no socket path (want unix:/PATH/TO/SOCKET:/URI)`},
		{"unix::/auth", "", "", `url "unix::/auth": no socket path`},
		{"unix:run/auth.sock:/auth", "", "", `url "unix:run/auth.sock:/auth": socket path "run/auth.sock" is relative`},
		{"unix:@abstract:/auth", "", "", `socket path "@abstract" is relative`},
		{"unix:" + long + ":/auth", "", "", "socket path is 108 bytes, longer than the 107 a Unix socket takes"},
		{"unix:/run/a:b.sock:/auth", "", "", `URI "b.sock:/auth" after the socket path does not start with /`},
		{"unix:/run/auth.sock:auth", "", "", `URI "auth" after the socket path does not start with /`},
		{"unix:/run/auth.sock:/a b", "", "", `URI "/a b" holds a space`},
		{"unix:/run/auth.sock:/a#b", "", "", `URI "/a#b" holds a space, control character or '#'`},
		{"unix:/run/auth\n.sock:/a", "", "", "holds a control character"},
		{"ftp://h/", "", "", `url "ftp://h/": want http://HOST[:PORT]/PATH, https://, or unix:/PATH/TO/SOCKET:/URI`},
		{"http:///auth", "", "", "want http://"},
		{"/run/auth.sock:/auth", "", "", "want http://"},
	} {
		target, _, sock, err := parseURL(tt.url)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.url, err, tt.err)
			}
			if _, nerr := New(Config{URL: tt.url}); nerr == nil {
				t.Errorf("%q: New took it", tt.url)
			}
			continue
		}
		if err != nil || target != tt.target || sock != tt.sock {
			t.Errorf("%q: %q, socket %q, err %v; want %q, socket %q", tt.url, target, sock, err, tt.target, tt.sock)
		}
	}
}

// TestUnixWithClientOrTLS: a unix: URL with a Config.Client (which would
// dial by host name) or TLS settings is refused, not silently half-used.
func TestUnixWithClientOrTLS(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "unix:/run/auth.sock:/auth", Client: &http.Client{}}, "needs the source's own HTTP client"},
		{Config{URL: "unix:/run/auth.sock:/auth", TLS: &tls.Config{}}, "TLS settings, but a unix: URL speaks plain HTTP"},
	} {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.cfg.URL, err, tt.want)
		}
	}
}
