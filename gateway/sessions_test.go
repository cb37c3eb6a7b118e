package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/demo"
	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/file"
)

// sessionsLog is a log destination a test waits on.
type sessionsLog struct {
	mu     sync.Mutex
	b      strings.Builder
	change chan struct{} // closed and renewed at each write
}

func newSessionsLog() *sessionsLog { return &sessionsLog{change: make(chan struct{})} }

func (l *sessionsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.change)
	l.change = make(chan struct{})
	return len(p), nil
}

// count is the number of lines holding every one of parts.
func (l *sessionsLog) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for line := range strings.SplitSeq(l.b.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func (l *sessionsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wait returns once n lines hold every one of parts; it fails the test
// after 10s.
func (l *sessionsLog) wait(t *testing.T, n int, parts ...string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		change := l.change
		l.mu.Unlock()
		if l.count(parts...) >= n {
			return
		}
		select {
		case <-change:
		case <-timeout:
			t.Fatalf("no %d log lines with %q:\n%s", n, parts, l.String())
		}
	}
}

// waitListed polls srv.Sessions until it lists n sessions (a session is
// listed once its pipe runs, just after the pipe started: no event to
// wait for), within 10s.
func waitListed(t *testing.T, srv *gateway.Server, n int) []gateway.SessionInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		list := srv.Sessions()
		if len(list) == n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("Sessions lists %d, want %d: %+v", len(list), n, list)
		}
		<-tick.C
	}
}

// mailGateways serves IMAP and POP3 gateways in front of the demo's
// in-memory mail hosts (go-imap's server, the demo's POP3 server), on
// the Engine's loops or on goroutines, logging into logs.
func mailGateways(t *testing.T, withEngine bool, logs io.Writer) (d *demo.Demo, im *imap.Server, p3 *pop3.Server, imapAddr, pop3Addr string, reg *prometheus.Registry) {
	t.Helper()
	d, err := demo.Start(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) }) // last: the backends
	routes, err := file.Parse("test routes", []byte(d.Routes))
	if err != nil {
		t.Fatal(err)
	}
	var eng *pipe.Engine
	if withEngine {
		eng = &pipe.Engine{}
		t.Cleanup(func() { // after the servers' Shutdown
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			eng.Shutdown(ctx)
		})
	}
	reg = prometheus.NewRegistry()
	im, p3 = &imap.Server{}, &pop3.Server{}
	for _, g := range []*gateway.Server{&im.Server, &p3.Server} {
		g.Router = routes
		g.AllowPlaintextAuth = true // loopback only
		g.FailureDelay = -1
		g.Logger = slog.New(slog.NewTextHandler(logs, nil))
		g.Engine = eng
	}
	im.Metrics, p3.Metrics = imap.NewMetrics(reg), pop3.NewMetrics(reg)
	li, lp := gatewaytest.Listen(t), gatewaytest.Listen(t)
	gatewaytest.Serve(t, im, gatewaytest.Listener{Listener: li})
	gatewaytest.Serve(t, p3, gatewaytest.Listener{Listener: lp})
	return d, im, p3, li.Addr().String(), lp.Addr().String(), reg
}

// lineConn is a raw client connection, closed at the test's end.
type lineConn struct {
	net.Conn
	br *bufio.Reader
}

func dialLines(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &lineConn{c, bufio.NewReader(c)}
}

// send writes line and returns the answer's line that starts with
// prefix, after any others.
func (c *lineConn) send(t *testing.T, line, prefix string) string {
	t.Helper()
	if line != "" {
		if _, err := io.WriteString(c, line+"\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", line, err)
		}
		if strings.HasPrefix(l, prefix) {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

// imapSession logs user in over IMAP and round-trips a NOOP through the
// pipe.
func imapSession(t *testing.T, addr, user, password string) *lineConn {
	t.Helper()
	c := dialLines(t, addr)
	c.send(t, "", "* OK")
	if got := c.send(t, "a1 LOGIN "+user+" "+password, "a1 "); !strings.HasPrefix(got, "a1 OK") {
		t.Fatalf("IMAP login %s: %q", user, got)
	}
	if got := c.send(t, "a2 NOOP", "a2 "); !strings.HasPrefix(got, "a2 OK") {
		t.Fatalf("IMAP NOOP: %q", got)
	}
	return c
}

// pop3Session logs user in over POP3 and round-trips a NOOP through the
// pipe.
func pop3Session(t *testing.T, addr, user, password string) *lineConn {
	t.Helper()
	c := dialLines(t, addr)
	c.send(t, "", "+OK")
	c.send(t, "USER "+user, "")
	if got := c.send(t, "PASS "+password, ""); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 login %s: %q", user, got)
	}
	if got := c.send(t, "NOOP", ""); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 NOOP: %q", got)
	}
	return c
}

// TestSessionsKick: Sessions lists the piped sessions of a Server (IMAP
// and POP3 through real backends, on goroutines and on the Engine's
// loops); Kick of an account ends exactly its sessions on that Server,
// each with the protocol's farewell after what the backend had sent, and
// each logged once as kicked by the administrator; other accounts and
// other Servers keep theirs; an account matches byte for byte.
func TestSessionsKick(t *testing.T) {
	for _, withEngine := range []bool{false, true} {
		t.Run(map[bool]string{false: "goroutines", true: "engine"}[withEngine], func(t *testing.T) {
			logs := newSessionsLog()
			d, im, p3, imapAddr, pop3Addr, reg := mailGateways(t, withEngine, logs)
			alice, carol := d.Accounts[0], d.Accounts[1]
			if alice.User != "alice@a.test" || carol.User != "carol@a.test" {
				t.Fatalf("demo accounts changed: %+v", d.Accounts)
			}
			before := time.Now()
			a1 := imapSession(t, imapAddr, alice.User, alice.Password)
			a2 := imapSession(t, imapAddr, alice.User, alice.Password)
			c1 := imapSession(t, imapAddr, carol.User, carol.Password)
			p1 := pop3Session(t, pop3Addr, alice.User, alice.Password)
			after := time.Now()

			list := waitListed(t, &im.Server, 3)
			waitListed(t, &p3.Server, 1)
			ids := map[string]bool{}
			for i, want := range []struct {
				account string
				c       net.Conn
			}{{alice.User, a1}, {alice.User, a2}, {carol.User, c1}} {
				s := list[i]
				if s.Account != want.account || s.Client != want.c.LocalAddr().String() || s.Protocol != "imap" ||
					s.Backend != d.Backends[0].IMAP || s.ClientTLS || s.Pool != "" {
					t.Errorf("session %d: %+v; want %s from %s to %s, in that order", i, s, want.account, want.c.LocalAddr(), d.Backends[0].IMAP)
				}
				if s.Since.Before(before) || s.Since.After(after) {
					t.Errorf("session %d: since %v, not within the test's logins", i, s.Since)
				}
				if s.ID == "" || ids[s.ID] {
					t.Errorf("session %d: ID %q empty or listed twice", i, s.ID)
				}
				ids[s.ID] = true
			}

			for _, nobody := range []string{"nobody@a.test", "ALICE@a.test", "alice@a.test ", ""} {
				if n := im.Kick(nobody); n != 0 {
					t.Errorf("Kick(%q) = %d, want 0", nobody, n)
				}
			}

			// a1 has the backend's answer to a NOOP under way: its first
			// byte has reached the client, so the rest was read from the
			// backend before the kick.
			if _, err := io.WriteString(a1, "a3 NOOP\r\n"); err != nil {
				t.Fatal(err)
			}
			if b, err := a1.br.ReadByte(); err != nil || b != 'a' {
				t.Fatalf("NOOP answer's first byte %q, %v", b, err)
			}
			if n := im.Kick(alice.User); n != 2 {
				t.Fatalf("Kick(%q) = %d, want 2", alice.User, n)
			}
			bye := "* BYE " + gateway.TextKicked + "\r\n"
			rest, err := io.ReadAll(a1.br)
			if err != nil || !strings.HasPrefix(string(rest), "3 OK ") || !strings.HasSuffix(string(rest), "\r\n"+bye) || strings.Count(string(rest), "\r\n") != 2 {
				t.Errorf("kicked client with a NOOP answer under way read %q, %v; want the rest of \"a3 OK ...\", then %q, then EOF", rest, err, bye)
			}
			if rest, err := io.ReadAll(a2.br); err != nil || string(rest) != bye {
				t.Errorf("kicked idle client read %q, %v; want %q then EOF", rest, err, bye)
			}

			// One line per kicked session, once its pipe ended; the
			// others' go on.
			logs.wait(t, 2, `msg="imap session"`, `reason="kicked: by the administrator"`)
			if got := im.Sessions(); len(got) != 1 || got[0].Account != carol.User {
				t.Errorf("after the kick, Sessions: %+v; want carol's only", got)
			}
			if got := c1.send(t, "c2 NOOP", "c2 "); !strings.HasPrefix(got, "c2 OK") {
				t.Errorf("carol's session after alice's kick: %q", got)
			}
			if got := p1.send(t, "NOOP", ""); !strings.HasPrefix(got, "+OK") {
				t.Errorf("alice's POP3 session after the IMAP kick: %q", got)
			}
			if n := logs.count(`msg="imap session"`); n != 2 {
				t.Errorf("%d imap session lines, want 2 (the kicked ones, once each):\n%s", n, logs)
			}
			if n := logs.count("imap: kicked by the administrator", "account="+alice.User, "sessions=2"); n != 1 {
				t.Errorf("%d lines for the kick, want 1:\n%s", n, logs)
			}
			if v := gatewaytest.Gauge(t, reg, "pipegate_imap_sessions_active"); v != 1 {
				t.Errorf("pipegate_imap_sessions_active = %v, want 1 (carol's)", v)
			}

			// POP3 has no farewell: the client sees the connection close.
			if n := p3.Kick(alice.User); n != 1 {
				t.Fatalf("POP3 Kick(%q) = %d, want 1", alice.User, n)
			}
			if rest, err := io.ReadAll(p1.br); err != nil || len(rest) != 0 {
				t.Errorf("kicked POP3 client read %q, %v; want EOF", rest, err)
			}
			logs.wait(t, 1, `msg="pop3 session"`, "account="+alice.User, `reason="kicked: by the administrator"`)
			if n := im.Kick(alice.User) + p3.Kick(alice.User); n != 0 {
				t.Errorf("a second kick ended %d sessions, want 0", n)
			}
			if v := gatewaytest.Gauge(t, reg, "pipegate_pop3_sessions_active"); v != 0 {
				t.Errorf("pipegate_pop3_sessions_active = %v, want 0", v)
			}
		})
	}
}

// TestKickRacesSessionEnds: a Kick while half of the account's clients
// close their sessions themselves ends every session exactly once (one
// log line each, the slots and the active count given back once, the
// Server's drain balanced), and the clients that stayed get the
// farewell.
func TestKickRacesSessionEnds(t *testing.T) {
	for _, withEngine := range []bool{false, true} {
		t.Run(map[bool]string{false: "goroutines", true: "engine"}[withEngine], func(t *testing.T) {
			backend := toyBackend()
			t.Cleanup(func() { backend.Close() })
			be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
			logs := newSessionsLog()
			reg := prometheus.NewRegistry()
			srv := &gateway.Server{
				Protocol: toy{},
				Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
					return route.Route{Backends: []route.Backend{be}}, nil
				}),
				AllowPlaintextAuth: true, FailureDelay: -1,
				Logger:  slog.New(slog.NewTextHandler(logs, nil)),
				Metrics: gateway.NewMetrics(reg, "toy"),
			}
			if withEngine {
				eng := &pipe.Engine{}
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					eng.Shutdown(ctx)
				})
				srv.Engine = eng
			}
			addr, served := serveLocal(t, srv)
			const n = 16
			var clients []*bufio.Reader
			var conns []net.Conn
			for range n {
				c, br := greeted(t, addr, 20*time.Second)
				pipedToy(t, c, br)
				clients, conns = append(clients, br), append(conns, c)
			}
			waitListed(t, srv, n)

			var wg sync.WaitGroup
			for i := range n / 2 {
				wg.Add(1)
				go closeClient(&wg, conns[i])
			}
			kicked := srv.Kick("alice@a.test")
			wg.Wait()
			if kicked < n/2 || kicked > n {
				t.Errorf("Kick = %d, want %d to %d", kicked, n/2, n)
			}
			for i := n / 2; i < n; i++ {
				if rest, err := io.ReadAll(clients[i]); err != nil || string(rest) != "-BYE "+gateway.TextKicked+"\r\n" {
					t.Errorf("client %d read %q, %v; want the farewell then EOF", i, rest, err)
				}
			}
			// Shutdown waits for every session's after-close: a second
			// one would panic the WaitGroup, a missing one hang.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			<-served
			if got := logs.count(`msg="toy session"`); got != n {
				t.Errorf("%d session lines, want %d:\n%s", got, n, logs)
			}
			if got := logs.count(`msg="toy session"`, `reason="kicked: by the administrator"`); got < n/2 || got > kicked {
				t.Errorf("%d sessions logged as kicked, want %d to %d (Kick's count)", got, n/2, kicked)
			}
			if got := srv.Sessions(); len(got) != 0 {
				t.Errorf("after the end, Sessions: %+v", got)
			}
			if v := gatewaytest.Gauge(t, reg, "pipegate_toy_sessions_active"); v != 0 {
				t.Errorf("pipegate_toy_sessions_active = %v, want 0", v)
			}
			if got := srv.Kick("alice@a.test"); got != 0 {
				t.Errorf("Kick after the end = %d", got)
			}
		})
	}
}

// closeClient is the goroutine of a client that ends its session as the
// kick comes.
func closeClient(wg *sync.WaitGroup, c net.Conn) {
	defer wg.Done()
	c.Close()
}

// ExampleServer_Kick lists a Server's sessions and ends those of one
// account, as `pipegate ctl sessions` and `pipegate ctl kick` do through
// the admin address of `pipegate mail`.
func ExampleServer_Kick() {
	var srv gateway.Server // serving, with sessions piped
	for _, s := range srv.Sessions() {
		fmt.Println(s.Protocol, s.Account, s.Client, "->", s.Backend, "since", s.Since.Format(time.RFC3339))
	}
	n := srv.Kick("alice@example.com") // IMAP clients get "* BYE Session ended by the administrator, please reconnect"
	fmt.Printf("kicked %d session(s)\n", n)
	// Output:
	// kicked 0 session(s)
}

// TestSessionsBackendAccount: a session whose route gave the backend
// another name than the client's (Route.Login) is listed and logged with
// both, carries both across a binary upgrade, and a Kick of either ends
// it; a session without a rewrite has no second name.
func TestSessionsBackendAccount(t *testing.T) {
	d, err := demo.Start(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	alice := d.Accounts[0]
	short, _, _ := strings.Cut(alice.User, "@")
	be, err := route.ParseBackend("imap://" + d.Backends[0].IMAP)
	if err != nil {
		t.Fatal(err)
	}
	logs := newSessionsLog()
	im := &imap.Server{}
	im.Router = route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		if req.Account == short {
			return route.Route{Backends: []route.Backend{be}, Login: alice.User}, nil
		}
		return route.Route{Backends: []route.Backend{be}}, nil
	})
	im.AllowPlaintextAuth, im.FailureDelay = true, -1
	im.Logger = slog.New(slog.NewTextHandler(logs, nil))
	l := gatewaytest.Listen(t)
	gatewaytest.Serve(t, im, gatewaytest.Listener{Listener: l})
	imapSession(t, l.Addr().String(), short, alice.Password)
	imapSession(t, l.Addr().String(), alice.User, alice.Password)

	list := waitListed(t, &im.Server, 2) // "alice" sorts before "alice@a.test"
	if list[0].Account != short || list[0].BackendAccount != alice.User || list[1].Account != alice.User || list[1].BackendAccount != "" {
		t.Fatalf("sessions %+v; want %s (backend: %s), then %s", list, short, alice.User, alice.User)
	}
	if !list[0].Of(short) || !list[0].Of(alice.User) || list[1].Of(short) || list[0].Of("") {
		t.Errorf("SessionInfo.Of does not match the account or the backend's name alone")
	}
	st, ok := im.Leaving(list[0].ID)
	im.Stayed(list[0].ID)
	if !ok || st.Account != short || st.BackendAccount != alice.User {
		t.Errorf("upgrade state %+v, %v; want account %s, backend account %s", st, ok, short, alice.User)
	}
	if n := im.Kick(alice.User); n != 2 {
		t.Fatalf("Kick(%q) = %d, want 2 (the one logged in as it, the one its backend logged in as it)", alice.User, n)
	}
	logs.wait(t, 2, `msg="imap session"`, `reason="kicked: by the administrator"`)
	if n := logs.count(`msg="imap session"`, " account="+short+" backend_account="+alice.User+" "); n != 1 {
		t.Errorf("%d session lines with account=%s backend_account=%s, want 1:\n%s", n, short, alice.User, logs)
	}
	if n := logs.count(`msg="imap session"`, "backend_account="); n != 1 {
		t.Errorf("%d session lines with a backend_account, want 1 (the rewritten one):\n%s", n, logs)
	}
}
