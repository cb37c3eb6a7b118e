package authhttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/internal/routetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an auth_http service answering with fixed headers and
// remembering the last request's headers.
type recorder struct {
	mu     sync.Mutex
	got    http.Header
	answer http.Header
	status int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.got = req.Header.Clone()
	answer, status := r.answer, r.status
	r.mu.Unlock()
	for k, v := range answer {
		w.Header()[k] = v
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
}

func (r *recorder) set(status int, kv ...string) {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	r.mu.Lock()
	r.answer, r.status = h, status
	r.mu.Unlock()
}

func (r *recorder) request() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

func newSource(t *testing.T, cfg Config) *Source {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRequestHeaders(t *testing.T) {
	rec := &recorder{}
	rec.set(200, "Auth-Status", "OK", "Auth-Server", "127.0.0.1", "Auth-Port", "143")
	srv := httptest.NewServer(rec)
	defer srv.Close()

	tests := []struct {
		name string
		cfg  Config
		req  route.Request
		want map[string]string // "" = must be absent
	}{
		{
			name: "nginx set, no password by default",
			cfg:  Config{URL: srv.URL + "/auth"},
			req: route.Request{Protocol: "imap", Account: "alice@a.test", Password: "secret", AuthMethod: "login",
				Attempt: 2, ClientAddr: netip.MustParseAddrPort("[::ffff:192.0.2.7]:50000")},
			want: map[string]string{"Auth-Method": "plain", "Auth-User": "alice@a.test", "Auth-Pass": "",
				"Auth-Protocol": "imap", "Auth-Login-Attempt": "2", "Client-Ip": "192.0.2.7", "Auth-Ssl": "", "Client-Host": ""},
		},
		{
			name: "password, escaping, TLS, extra headers",
			cfg:  Config{URL: srv.URL + "/auth", PassPassword: true, Headers: map[string]string{"X-Auth-Key": "k1"}},
			req: route.Request{Account: "al ice%@a.test", Password: "p w%\x01\x7fü", AuthMethod: "PLAIN", ClientTLS: true,
				ClientAddr: netip.MustParseAddrPort("[2001:db8::1]:1")},
			want: map[string]string{"Auth-Method": "plain", "Auth-User": "al%20ice%25@a.test", "Auth-Pass": "p%20w%25%01%7F%C3%BC",
				"Auth-Protocol": "imap", "Auth-Login-Attempt": "1", "Client-Ip": "2001:db8::1", "Auth-Ssl": "on", "X-Auth-Key": "k1"},
		},
		{
			name: "other SASL mechanism",
			cfg:  Config{URL: srv.URL},
			req:  route.Request{Protocol: "imap", Account: "bob@a.test", AuthMethod: "XOAUTH2"},
			want: map[string]string{"Auth-Method": "xoauth2", "Client-Ip": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSource(t, tt.cfg)
			if _, err := s.Lookup(context.Background(), tt.req); err != nil {
				t.Fatal(err)
			}
			got := rec.request()
			for k, v := range tt.want {
				if v == "" {
					if _, ok := got[http.CanonicalHeaderKey(k)]; ok {
						t.Errorf("%s sent (%q), want absent", k, got.Get(k))
					}
					continue
				}
				if got.Get(k) != v {
					t.Errorf("%s: %q, want %q", k, got.Get(k), v)
				}
			}
		})
	}
}

func TestResponses(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSource(t, Config{URL: srv.URL})

	tests := []struct {
		name    string
		status  int
		answer  []string
		backend string // backends joined by space
		login   string
		pass    string
		denied  *route.Denied
		err     string
	}{
		{name: "ok", answer: []string{"Auth-Status", "OK", "Auth-Server", "127.0.0.1", "Auth-Port", "14301"},
			backend: "imap://127.0.0.1:14301"},
		{name: "ok, login and password rewrite", answer: []string{"Auth-Status", "OK", "Auth-Server", "10.0.0.1", "Auth-Port", "143",
			"Auth-User", "alice", "Auth-Pass", "backend-secret"}, backend: "imap://10.0.0.1:143", login: "alice", pass: "backend-secret"},
		{name: "starttls with server name", answer: []string{"Auth-Status", "OK", "Auth-Server", "10.0.0.1", "Auth-Port", "143",
			"X-Pipegate-Backend-TLS", "starttls", "X-Pipegate-Server-Name", "mail.a.test"}, backend: "imap+starttls://10.0.0.1:143?server_name=mail.a.test"},
		{name: "tls, IPv6", answer: []string{"Auth-Status", "OK", "Auth-Server", "::1", "Auth-Port", "993", "X-Pipegate-Backend-TLS", "tls"},
			backend: "imaps://[::1]:993"},
		{name: "host name", answer: []string{"Auth-Status", "OK", "Auth-Server", "mail.a.test", "Auth-Port", "993", "X-Pipegate-Backend-TLS", "TLS"},
			backend: "imaps://mail.a.test:993"},
		{name: "backend URLs", answer: []string{"Auth-Status", "OK", "X-Pipegate-Backend", "imaps://127.0.0.1:1 imap://127.0.0.1:2",
			"X-Pipegate-Backend", "imap+starttls://127.0.0.1:3?id=0", "Auth-Server", "ignored", "Auth-Port", "1"},
			backend: "imaps://127.0.0.1:1 imap://127.0.0.1:2 imap+starttls://127.0.0.1:3?client_addr=none"},
		{name: "HTTP status is ignored, as nginx does", status: 503, answer: []string{"Auth-Status", "OK", "Auth-Server", "127.0.0.1", "Auth-Port", "1"},
			backend: "imap://127.0.0.1:1"},
		{name: "denied with wait", answer: []string{"Auth-Status", "Invalid login or password", "Auth-Wait", "3"},
			denied: &route.Denied{Text: "Invalid login or password", Wait: 3 * time.Second}},
		{name: "denied with code", answer: []string{"Auth-Status", "Temporary server problem, try again later", "Auth-Error-Code", "UNAVAILABLE"},
			denied: &route.Denied{Text: "Temporary server problem, try again later", Code: "UNAVAILABLE"}},
		{name: "denied, long text cut", answer: []string{"Auth-Status", strings.Repeat("x", 500)},
			denied: &route.Denied{Text: strings.Repeat("x", maxText)}},
		{name: "no Auth-Status", status: 500, answer: nil, err: `500 Internal Server Error: no "Auth-Status" header`},
		{name: "OK without server", answer: []string{"Auth-Status", "OK", "Auth-Port", "1"}, err: `without "Auth-Server"`},
		{name: "bad port", answer: []string{"Auth-Status", "OK", "Auth-Server", "h", "Auth-Port", "99999"}, err: `invalid "Auth-Port: 99999"`},
		{name: "bad server", answer: []string{"Auth-Status", "OK", "Auth-Server", "h/x", "Auth-Port", "1"}, err: `invalid "Auth-Server: h/x"`},
		{name: "bad TLS mode", answer: []string{"Auth-Status", "OK", "Auth-Server", "h", "Auth-Port", "1", "X-Pipegate-Backend-TLS", "maybe"},
			err: `invalid "X-Pipegate-Backend-TLS: maybe"`},
		{name: "bad backend URL", answer: []string{"Auth-Status", "OK", "X-Pipegate-Backend", "gopher://h:1"}, err: `"X-Pipegate-Backend": backend "gopher://h:1"`},
		{name: "bad wait", answer: []string{"Auth-Status", "No", "Auth-Wait", "soon"}, err: `invalid "Auth-Wait: soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.set(tt.status, tt.answer...)
			rt, err := s.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@a.test"})
			switch {
			case tt.denied != nil:
				var d *route.Denied
				if !errors.As(err, &d) {
					t.Fatalf("err = %v, want *route.Denied", err)
				}
				if *d != *tt.denied {
					t.Fatalf("denied %+v, want %+v", *d, *tt.denied)
				}
			case tt.err != "":
				var d *route.Denied
				if err == nil || !strings.Contains(err.Error(), tt.err) || errors.As(err, &d) || errors.Is(err, route.ErrNotFound) {
					t.Fatalf("err = %v, want an error containing %q", err, tt.err)
				}
				if !strings.Contains(err.Error(), srv.URL) {
					t.Errorf("error %q does not name the service", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				var urls []string
				for _, b := range rt.Backends {
					urls = append(urls, b.String())
				}
				if got := strings.Join(urls, " "); got != tt.backend {
					t.Errorf("backends %s, want %s", got, tt.backend)
				}
				if rt.Login != tt.login || rt.Password != tt.pass {
					t.Errorf("login %q password %q, want %q %q", rt.Login, rt.Password, tt.login, tt.pass)
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "url"},
		{Config{URL: "ftp://h/"}, "want http://"},
		{Config{URL: "http:///auth"}, "want http://"},
		{Config{URL: "http://h/", Headers: map[string]string{"Bad Name": "x"}}, "headers"},
		{Config{URL: "http://h/", Headers: map[string]string{"X-A": "a\r\nInjected: 1"}}, "headers"},
	} {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v): err = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"alice@a.test":           "alice@a.test",
		"a b":                    "a%20b",
		"100%":                   "100%25",
		"\r\n\t":                 "%0D%0A%09",
		"ünï\x7f":                "%C3%BCn%C3%AF%7F",
		"+&=?/":                  "+&=?/",
		"bob@a.test\x00x@a.test": "bob@a.test%00x@a.test",
		"\xff\x80":               "%FF%80",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	// Every byte: the result is printable ASCII without space, and a URL
	// unescape gives the value back (what nginx's services do).
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	got := Escape(string(all))
	for i := 0; i < len(got); i++ {
		if got[i] <= ' ' || got[i] >= 0x7f {
			t.Fatalf("Escape left byte %#x in %q", got[i], got)
		}
	}
	if back, err := url.PathUnescape(got); err != nil || back != string(all) {
		t.Errorf("unescape(Escape(all bytes)) = %q, %v", back, err)
	}
}

// serveOn runs an HTTP server on addr until the returned stop is called.
func serveOn(t *testing.T, addr string, h http.Handler) (stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go serveHTTP(srv, l, done)
	return func() {
		srv.Close()
		<-done
	}
}

func serveHTTP(srv *http.Server, l net.Listener, done chan<- struct{}) {
	defer close(done)
	_ = srv.Serve(l)
}

// TestDownAndBack: a service that is down is an error at once (not a
// denial, not "not found"), and the source works again when it is back.
func TestDownAndBack(t *testing.T) {
	rec := &recorder{}
	rec.set(200, "Auth-Status", "OK", "Auth-Server", "127.0.0.1", "Auth-Port", "143")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	stop := serveOn(t, addr, rec)
	s := newSource(t, Config{URL: "http://" + addr + "/auth"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Lookup(ctx, route.Request{Account: "a@a.test"}); err != nil {
		t.Fatal(err)
	}
	stop()
	_, err = s.Lookup(ctx, route.Request{Account: "a@a.test"})
	var d *route.Denied
	if err == nil || errors.As(err, &d) || errors.Is(err, route.ErrNotFound) || ctx.Err() != nil {
		t.Fatalf("service down: err = %v, want a connection error before the deadline", err)
	}
	stop = serveOn(t, addr, rec)
	defer stop()
	if _, err := s.Lookup(ctx, route.Request{Account: "a@a.test"}); err != nil {
		t.Fatalf("service back: %v", err)
	}
}

// TestHungService: a service that never answers fails the lookup at the
// context's deadline.
func TestHungService(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newSource(t, Config{URL: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Lookup(ctx, route.Request{Account: "a@a.test"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func BenchmarkLookup(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("Auth-Server", "127.0.0.1")
		w.Header().Set("Auth-Port", "143")
	}))
	defer srv.Close()
	s, err := New(Config{URL: srv.URL, PassPassword: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	req := route.Request{Protocol: "imap", Account: "alice@a.test", Password: "secret", ClientAddr: netip.MustParseAddrPort("127.0.0.1:5000")}
	routetest.BenchLookup(b, s, req)
}
