package routelogin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	goldap "github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/pipegate/pipegate/route/config"
)

// The account every login uses; the backend checks its password.
const (
	account  = "alice@a.test"
	password = "alice-secret"
	suffix   = "dc=pipegate,dc=test"
)

// sources are the benchmarked route sources, in report order.
var sources = []string{"file", "http", "redis", "ldap", "sql"}

// realServers are the source servers, started once in TestMain. An error
// wrapping realserver.ErrMissing means "not installed": realserver.Need
// skips.
type realServers struct {
	redis    *realserver.Redis
	redisErr error
	slapd    *realserver.Slapd
	slapdErr error
	pg       *realserver.Postgres
	pgErr    error
}

var servers realServers

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipegate-bench-routelogin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	servers = startServers(dir)
	realserver.RunTests(m, servers.stop, func() { os.RemoveAll(dir) })
}

// startServers starts redis, slapd and PostgreSQL in dir and loads what
// does not depend on the backend's port (the LDAP entry, the SQL table).
func startServers(dir string) realServers {
	var s realServers
	s.redis, s.redisErr = realserver.StartRedis(dir)
	s.slapd, s.slapdErr = realserver.StartSlapd(dir, realserver.SlapdConfig{Suffix: suffix})
	if s.slapdErr == nil {
		if err := seedLDAP(s.slapd); err != nil {
			s.slapdErr = fmt.Errorf("seed slapd at %s: %w", s.slapd.URL, err)
		}
	}
	s.pg, s.pgErr = realserver.StartPostgres(dir)
	if s.pgErr == nil {
		if err := execSQL(s.pg, `CREATE TABLE routes (account text PRIMARY KEY, backend text NOT NULL)`); err != nil {
			s.pgErr = fmt.Errorf("create table at %s: %w", s.pg.Addr, err)
		}
	}
	return s
}

func (s realServers) stop() {
	if s.redis != nil {
		s.redis.Stop()
	}
	if s.slapd != nil {
		s.slapd.Stop()
	}
	if s.pg != nil {
		s.pg.Stop()
	}
}

// errOf is the start error of source's server (nil for file and http).
func (s realServers) errOf(source string) error {
	switch source {
	case "redis":
		return s.redisErr
	case "ldap":
		return s.slapdErr
	case "sql":
		return s.pgErr
	}
	return nil
}

// seedLDAP adds the suffix, ou=people and the account's entry, whose
// mailHost is the backend host (the port comes from the source's config).
func seedLDAP(s *realserver.Slapd) error {
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(s.RootDN, s.RootPW); err != nil {
		return err
	}
	root := goldap.NewAddRequest(suffix, nil)
	root.Attribute("objectClass", []string{"dcObject", "organization"})
	root.Attribute("dc", []string{"pipegate"})
	root.Attribute("o", []string{"pipegate bench"})
	people := goldap.NewAddRequest("ou=people,"+suffix, nil)
	people.Attribute("objectClass", []string{"organizationalUnit"})
	people.Attribute("ou", []string{"people"})
	alice := goldap.NewAddRequest("uid=alice,ou=people,"+suffix, nil)
	alice.Attribute("objectClass", []string{"inetOrgPerson", "inetLocalMailRecipient"})
	for k, v := range map[string]string{"uid": "alice", "cn": "alice", "sn": "alice", "mail": account, "mailHost": "127.0.0.1"} {
		alice.Attribute(k, []string{v})
	}
	for _, a := range []*goldap.AddRequest{root, people, alice} {
		if err := c.Add(a); err != nil {
			return fmt.Errorf("add %s: %w", a.DN, err)
		}
	}
	return nil
}

func execSQL(pg *realserver.Postgres, query string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.ConnURL)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, query, args...)
	return err
}

// rig is one backend with every source pointing the account at it.
type rig struct {
	dir         string       // holds routes.yaml
	backendAddr string       // the in-memory IMAP server
	backendConn atomic.Int64 // connections the backend accepted
	authAddr    string       // the auth_http server
	authReqs    atomic.Int64 // requests the auth_http server answered
}

// newRig starts the backend and the auth_http server and points the file,
// redis and sql sources at the backend (ldap names its host; the config
// gives the port).
func newRig(tb testing.TB) *rig {
	tb.Helper()
	r := &rig{dir: tb.TempDir()}
	r.startBackend(tb)
	r.startAuthHTTP(tb)
	routes := fmt.Sprintf("routes:\n  - account: %s\n    backend: imap://%s\n", account, r.backendAddr)
	if err := os.WriteFile(filepath.Join(r.dir, "routes.yaml"), []byte(routes), 0o600); err != nil {
		tb.Fatal(err)
	}
	if servers.redisErr == nil {
		c := goredis.NewClient(&goredis.Options{Addr: servers.redis.Addr})
		err := c.Set(context.Background(), "route:"+account, "imap://"+r.backendAddr, 0).Err()
		c.Close()
		if err != nil {
			tb.Fatalf("redis %s: SET: %v", servers.redis.Addr, err)
		}
	}
	if servers.pgErr == nil {
		err := execSQL(servers.pg, `INSERT INTO routes VALUES ($1, $2) ON CONFLICT (account) DO UPDATE SET backend = EXCLUDED.backend`,
			account, "imap://"+r.backendAddr)
		if err != nil {
			tb.Fatalf("postgres %s: insert route: %v", servers.pg.Addr, err)
		}
	}
	return r
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startBackend runs go-imap's in-memory server holding the account.
func (r *rig) startBackend(tb testing.TB) {
	tb.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(account, password)
	if err := u.Create("INBOX", nil); err != nil {
		tb.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}},
		InsecureAuth: true, // loopback
		Logger:       log.New(io.Discard, "", 0),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r.backendAddr = l.Addr().String()
	done := make(chan struct{})
	go serveBackend(srv, countingListener{l, &r.backendConn}, done)
	tb.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// serveBackend is the goroutine accepting the backend's connections.
func serveBackend(srv *imapserver.Server, l net.Listener, done chan<- struct{}) {
	defer close(done)
	_ = srv.Serve(l)
}

// startAuthHTTP runs an nginx-style auth_http service that sends the
// account to the backend and counts its requests.
func (r *rig) startAuthHTTP(tb testing.TB) {
	tb.Helper()
	host, port, _ := net.SplitHostPort(r.backendAddr)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.authReqs.Add(1)
		if req.Header.Get("Auth-User") != account || req.Header.Get("Auth-Protocol") != "imap" {
			w.Header().Set("Auth-Status", "Invalid login or password")
			return
		}
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("Auth-Server", host)
		w.Header().Set("Auth-Port", port)
	}))
	tb.Cleanup(ts.Close)
	r.authAddr = ts.Listener.Addr().String()
}

// sourceYAML is the route_sources entry for source, as an operator writes
// it; cached turns the route cache on (off otherwise; file has none).
func (r *rig) sourceYAML(source string, cached bool) string {
	var s string
	switch source {
	case "file":
		return "  - type: file\n    path: routes.yaml\n"
	case "http":
		s = fmt.Sprintf("  - type: http\n    url: http://%s/auth\n", r.authAddr)
	case "redis":
		s = fmt.Sprintf("  - type: redis\n    url: redis://%s/0\n    key: \"route:%%u\"\n", servers.redis.Addr)
	case "ldap":
		_, port, _ := net.SplitHostPort(r.backendAddr)
		s = fmt.Sprintf("  - type: ldap\n    url: %s\n    base_dn: ou=people,%s\n    filter: \"(mail=%%u)\"\n    host_attr: mailHost\n    port: %s\n",
			servers.slapd.URL, suffix, port)
	case "sql":
		s = fmt.Sprintf("  - type: sql\n    url: %s\n    query: SELECT backend FROM routes WHERE account = lower($1)\n    max_conns: 2\n", servers.pg.ConnURL)
	}
	return s + "    timeout: 3s\n    cache: " + strconv.FormatBool(cached) + "\n"
}

// startProxy builds source's router with route/config and serves an
// imap.Server with it on loopback; it returns the proxy's address.
func (r *rig) startProxy(tb testing.TB, source string, cached bool) string {
	tb.Helper()
	realserver.Need(tb, servers.errOf(source))
	var cfg struct {
		RouteSources []config.SourceConfig `yaml:"route_sources"`
	}
	text := "route_sources:\n" + r.sourceYAML(source, cached)
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		tb.Fatalf("decode %q: %v", text, err)
	}
	router, _, closeSources, err := config.Build(context.Background(), r.dir, cfg.RouteSources, config.CacheConfig{})
	if err != nil {
		tb.Fatalf("build %q: %v", text, err)
	}
	srv := &imap.Server{Server: gateway.Server{
		Router:             router,
		AllowPlaintextAuth: true, // loopback only
		Logger:             slog.New(slog.DiscardHandler),
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go serveProxy(srv, l, done)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("proxy shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, imap.ErrServerClosed) {
			tb.Errorf("proxy Serve: %v", err)
		}
		if err := closeSources(); err != nil {
			tb.Errorf("close %s source: %v", source, err)
		}
	})
	return l.Addr().String()
}

// serveProxy is the goroutine running the proxy on l.
func serveProxy(srv *imap.Server, l net.Listener, done chan<- error) {
	done <- srv.Serve(l, false)
}

// login connects to the proxy, logs in and logs out, in raw IMAP.
func login(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	if l, err := expect(br, "* "); err != nil || !strings.HasPrefix(l, "* OK") {
		return fmt.Errorf("proxy %s: greeting %q: %v", addr, l, err)
	}
	if _, err := fmt.Fprintf(c, "a LOGIN %s %s\r\n", account, password); err != nil {
		return fmt.Errorf("proxy %s: send LOGIN: %w", addr, err)
	}
	if l, err := expect(br, "a "); err != nil || !strings.HasPrefix(l, "a OK") {
		return fmt.Errorf("proxy %s: LOGIN answered %q: %v", addr, l, err)
	}
	if _, err := io.WriteString(c, "b LOGOUT\r\n"); err != nil {
		return fmt.Errorf("proxy %s: send LOGOUT: %w", addr, err)
	}
	if l, err := expect(br, "b "); err != nil || !strings.HasPrefix(l, "b OK") {
		return fmt.Errorf("proxy %s: LOGOUT answered %q: %v", addr, l, err)
	}
	return nil
}

// expect reads lines (at most 20) until one starts with prefix.
func expect(br *bufio.Reader, prefix string) (string, error) {
	for range 20 {
		l, err := br.ReadString('\n')
		if err != nil {
			return l, err
		}
		if strings.HasPrefix(l, prefix) {
			return strings.TrimRight(l, "\r\n"), nil
		}
	}
	return "", fmt.Errorf("no line starting with %q", prefix)
}

// BenchmarkLogin is logins per second through the proxy with each source,
// cold (no cache: a round trip to the source per login) and warm (cache
// on and primed). The file source is in memory and never cached: its two
// lines are the same set-up.
func BenchmarkLogin(b *testing.B) {
	for _, source := range sources {
		b.Run(source, func(b *testing.B) {
			for _, warm := range []bool{false, true} {
				name := "cold"
				if warm {
					name = "warm"
				}
				b.Run(name, func(b *testing.B) { benchLogin(b, source, warm) })
			}
		})
	}
}

func benchLogin(b *testing.B, source string, warm bool) {
	r := newRig(b)
	addr := r.startProxy(b, source, warm)
	if err := login(addr); err != nil { // primes the cache when warm; connects the source's pool either way
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := login(addr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// redisGets is how many GET commands the redis server has run.
func redisGets(t *testing.T, c *goredis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("redis %s: INFO commandstats: %v", servers.redis.Addr, err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_get:calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		if err != nil {
			t.Fatalf("redis INFO: %q: %v", line, err)
		}
		return n
	}
	return 0 // no GET yet
}

// TestLoginEachSource logs in through the proxy once per source and
// cache state, checks that the login reached the backend, and counts the
// round trips to the source where that is cheap: a cold login asks the
// http and redis sources once, a warm one not at all. The ldap and sql
// servers are frozen (SIGSTOP) for the warm login, which must still work.
func TestLoginEachSource(t *testing.T) {
	for _, source := range sources {
		t.Run(source, func(t *testing.T) {
			r := newRig(t)
			// asks counts the source's answers: -1 where not counted.
			asks := func() int { return -1 }
			switch source {
			case "http":
				asks = func() int { return int(r.authReqs.Load()) }
			case "redis":
				realserver.Need(t, servers.redisErr)
				c := goredis.NewClient(&goredis.Options{Addr: servers.redis.Addr})
				t.Cleanup(func() { c.Close() })
				asks = func() int { return redisGets(t, c) }
			}
			loginOnce := func(addr string) {
				t.Helper()
				before := r.backendConn.Load()
				if err := login(addr); err != nil {
					t.Fatal(err)
				}
				if got := r.backendConn.Load() - before; got != 1 {
					t.Fatalf("backend accepted %d connections for one login, want 1", got)
				}
			}

			cold := r.startProxy(t, source, false)
			for i := range 2 {
				before := asks()
				loginOnce(cold)
				if n := asks() - before; before >= 0 && n != 1 {
					t.Errorf("cold login %d: %d requests to the %s source, want 1", i+1, n, source)
				}
			}

			warm := r.startProxy(t, source, true)
			before := asks()
			loginOnce(warm) // miss: fills the cache
			if n := asks() - before; before >= 0 && n != 1 {
				t.Errorf("first warm login: %d requests to the %s source, want 1 (cache miss)", n, source)
			}
			switch source {
			case "ldap":
				freeze(t, servers.slapd.Pause, servers.slapd.Resume)
			case "sql":
				freeze(t, servers.pg.Pause, servers.pg.Resume)
			}
			before = asks()
			loginOnce(warm) // hit
			if n := asks() - before; before >= 0 && n != 0 {
				t.Errorf("warm login: %d requests to the %s source, want 0 (cache hit)", n, source)
			}
		})
	}
}

// freeze pauses a source server until the end of the test: a login that
// asked it would fail after the source's timeout.
func freeze(t *testing.T, pause, resume func() error) {
	t.Helper()
	if err := pause(); err != nil {
		t.Fatalf("pause: %v", err)
	}
	t.Cleanup(func() {
		if err := resume(); err != nil {
			t.Errorf("resume: %v", err)
		}
	})
}
