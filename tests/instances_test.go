package tests

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/limit"
)

// Running several instances (docs/instances.md): behind HAProxy with
// PROXY v2 and /healthz checks, TLS session resumption across instances
// through shared ticket keys, and the auth penalty shared through Redis.

// haproxyConfig is the configuration of docs/instances.md, on loopback.
const haproxyConfig = `global
    nbthread 1
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 35m
    timeout server 35m
    retries 3
    option redispatch 1
frontend imap
    bind {{front}}
    default_backend pipegate_imap
frontend imaps
    bind {{fronttls}}
    default_backend pipegate_imaps
backend pipegate_imap
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 200ms fastinter 100ms downinter 500ms rise 2 fall 1 send-proxy-v2
    server p1 {{p1}} check port {{m1}}
    server p2 {{p2}} check port {{m2}}
backend pipegate_imaps
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 200ms fastinter 100ms downinter 500ms rise 2 fall 1 send-proxy-v2
    server p1 {{p1tls}} check port {{m1}}
    server p2 {{p2tls}} check port {{m2}}
`

// sessionFrom127002 matches an instance's session line for a client on
// 127.0.0.2 (the address HAProxy passed on in its PROXY header).
const sessionFrom127002 = `msg="imap session" session=\S+ client=127\.0\.0\.2:\d+ account=alice@a\.test`

// TestInstancesBehindHAProxy: client (127.0.0.2) → HAProxy (send-proxy-v2,
// roundrobin, health checks on /healthz) → two pipegate instances →
// Dovecot, which must log the client's address. Then one instance is
// drained as on a deploy.
func TestInstancesBehindHAProxy(t *testing.T) {
	testenv.LookPath(t, "haproxy", "haproxy")
	ca := tlstest.NewCA(t)
	dcert, dkey := ca.Issue(t, "127.0.0.1", "localhost")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users: backend1Users, Messages: allMessages(backend1Users),
		TrustedNetworks: []string{"127.0.0.1/32"}, // the instances dial from there
		CertFile:        dcert, KeyFile: dkey,
	})
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	writeFile(t, routes, "routes:\n  - domain: a.test\n    backend: imap://"+d.Addr+"\n")
	p := []*env{
		startInstance(t, instanceOptions{ca: ca, routes: routes}),
		startInstance(t, instanceOptions{ca: ca, routes: routes}),
	}
	front, frontTLS := testenv.FreeAddr(t), testenv.FreeAddr(t)
	_, m1, _ := net.SplitHostPort(p[0].metricsAddr)
	_, m2, _ := net.SplitHostPort(p[1].metricsAddr)
	startHAProxy(t, strings.NewReplacer(
		"{{front}}", front, "{{fronttls}}", frontTLS,
		"{{p1}}", p[0].plainAddr, "{{p2}}", p[1].plainAddr,
		"{{p1tls}}", p[0].tlsAddr, "{{p2tls}}", p[1].tlsAddr,
		"{{m1}}", m1, "{{m2}}", m2,
	).Replace(haproxyConfig), front)

	// loginThroughLB logs in through HAProxy with STARTTLS, or with
	// implicit TLS when implicit.
	loginThroughLB := func(t *testing.T, implicit bool) {
		t.Helper()
		opts := &imapclient.Options{TLSConfig: p[0].clientTLS()}
		var c *imapclient.Client
		if implicit {
			c = imapclient.New(tls.Client(dialFrom(t, "127.0.0.2", frontTLS), p[0].clientTLS()), opts)
		} else {
			var err error
			if c, err = imapclient.NewStartTLS(dialFrom(t, "127.0.0.2", front), opts); err != nil {
				t.Fatalf("STARTTLS through haproxy: %v", err)
			}
		}
		if n := loginAndCount(t, c, "alice@a.test", "login"); n != messageCount["alice@a.test"] {
			t.Fatalf("%d messages, want %d", n, messageCount["alice@a.test"])
		}
	}

	t.Run("healthz while serving", func(t *testing.T) {
		for i, e := range p {
			if code, body := httpGet(t, "http://"+e.metricsAddr+"/healthz"); code != 200 || body != "ok" {
				t.Errorf("instance %d: /healthz %d %q, want 200 ok", i+1, code, body)
			}
		}
	})

	t.Run("client address through both instances", func(t *testing.T) {
		for i := range 8 {
			loginThroughLB(t, i >= 4)
		}
		// Roundrobin: each instance served logins, and saw the client's
		// address from the PROXY header, not HAProxy's.
		for i, e := range p {
			waitUntil(t, fmt.Sprintf("instance %d serving 4 sessions from 127.0.0.2", i+1), func() bool {
				return countLog(e, sessionFrom127002) >= 4
			})
		}
		re := regexp.MustCompile(`Login: user=<alice@a\.test>, method=PLAIN, rip=([0-9.]+)`)
		waitUntil(t, "dovecot logging 8 logins", func() bool { return len(re.FindAllString(d.Log(), -1)) >= 8 })
		for _, m := range re.FindAllStringSubmatch(d.Log(), -1) {
			if m[1] != "127.0.0.2" {
				t.Errorf("dovecot logged rip=%s, want the client's 127.0.0.2 (not the proxies' 127.0.0.1)", m[1])
			}
		}
	})

	t.Run("drain one instance", func(t *testing.T) {
		// A logged-in session and an idle pre-login connection on
		// instance 1 (directly: from an untrusted address no PROXY header
		// is expected).
		held, err := imapclient.NewStartTLS(dialFrom(t, "127.0.0.3", p[0].plainAddr), &imapclient.Options{TLSConfig: p[0].clientTLS()})
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		if err := held.Login("alice@a.test", password("alice@a.test")).Wait(); err != nil {
			t.Fatal(err)
		}
		idle := rawDial(t, "127.0.0.3", p[0].plainAddr)
		before := countLog(p[1], sessionFrom127002)

		if err := p[0].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if out, _ := idle.untilClosed(); !strings.Contains(out, "* BYE") {
			t.Errorf("idle pre-login client at SIGTERM got %q, want * BYE", out)
		}
		code, body := httpGet(t, "http://"+p[0].metricsAddr+"/healthz")
		if code != 503 || body != "draining" {
			t.Errorf("draining instance: /healthz %d %q, want 503 draining", code, body)
		}
		waitUntil(t, "instance 1 closing its listener", func() bool { return refused(p[0].plainAddr) })
		// New clients reach instance 2 (HAProxy retries and redispatches
		// until its check marks instance 1 down).
		for i := range 3 {
			loginThroughLB(t, i == 0)
		}
		waitUntil(t, "instance 2 serving the 3 new sessions", func() bool {
			return countLog(p[1], sessionFrom127002) >= before+3
		})
		// The session on the draining instance goes on until it ends.
		if _, err := held.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("session on the draining instance: %v", err)
		}
		if err := held.Logout().Wait(); err != nil {
			t.Fatalf("logout on the draining instance: %v", err)
		}
		select {
		case <-p[0].exited:
		case <-time.After(15 * time.Second):
			t.Fatalf("instance 1 still running after its last session ended")
		}
		if p[0].waitErr != nil {
			t.Errorf("instance 1 exit after drain: %v", p[0].waitErr)
		}
		if countLog(p[0], `drain incomplete`) > 0 {
			t.Errorf("instance 1 closed sessions at the drain deadline:\n%s", p[0].log())
		}
	})
}

// TestInstancesTLSResumption: a client's session from instance 1 resumes
// on instance 2 (both read one ticket key file), also after a key
// rotation with SIGHUP, and not on an instance with other keys.
func TestInstancesTLSResumption(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, "routes: []\ndefault: imap://"+testenv.FreeAddr(t)+"\n")
	shared, other := filepath.Join(dir, "shared.keys"), filepath.Join(dir, "other.keys")
	oldKey, newKey := newTicketKey(t), newTicketKey(t)
	writeFile(t, shared, "# ticket keys of instances 1 and 2\n"+oldKey+"\n")
	writeFile(t, other, newTicketKey(t)+"\n")
	p1 := startInstance(t, instanceOptions{ca: ca, routes: routes, ticketKeys: shared})
	p2 := startInstance(t, instanceOptions{ca: ca, routes: routes, ticketKeys: shared})
	p3 := startInstance(t, instanceOptions{ca: ca, routes: routes, ticketKeys: other})

	versions := []struct {
		name    string
		version uint16
		cfg     *tls.Config
	}{{name: "TLS1.2", version: tls.VersionTLS12}, {name: "TLS1.3", version: tls.VersionTLS13}}
	for i := range versions {
		v := &versions[i]
		v.cfg = &tls.Config{
			RootCAs: ca.Pool(), ServerName: "localhost",
			MinVersion: v.version, MaxVersion: v.version,
			ClientSessionCache: tls.NewLRUClientSessionCache(4), // keyed by ServerName: one for all instances
		}
	}
	check := func(step string, e *env, want bool) {
		t.Helper()
		for _, v := range versions {
			if got := tlsGreeting(t, e.tlsAddr, v.cfg); got != want {
				t.Errorf("%s: %s: resumed=%v, want %v", v.name, step, got, want)
			}
		}
	}
	check("first handshake with instance 1", p1, false)
	check("instance 2 with instance 1's ticket", p2, true)

	// Rotation: the new key first (it encrypts), the old one kept (it
	// still decrypts tickets issued before).
	writeFile(t, shared, newKey+"\n"+oldKey+"\n")
	sighup(t, p1)
	sighup(t, p2)
	check("instance 1 after rotation, ticket under the old key", p1, true)
	check("instance 2 after rotation, ticket under the new key", p2, true)
	// The old key retired: tickets issued since the rotation still resume.
	writeFile(t, shared, newKey+"\n")
	sighup(t, p1)
	sighup(t, p2)
	check("instance 1 after the old key was retired", p1, true)

	check("instance 3 with other keys", p3, false) // a full handshake, then a ticket of instance 3
	check("instance 2 with instance 3's ticket", p2, false)
}

// penaltyRedisConfig is auth_penalty with the counts in Redis at addr, and
// a delay long enough to outlast the test.
const penaltyRedisConfig = `auth_penalty:
  base: 1h
  max: 1h
  redis:
    addr: %s
    prefix: "test:penalty:"
`

// TestInstancesSharedPenalty: a failed login on instance 1 delays the next
// login of that client address on instance 2, through Redis.
func TestInstancesSharedPenalty(t *testing.T) {
	rs := startRedis(t)
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, "routes:\n  - account: "+guessUser+"\n    backend: imap://"+startMemBackend(t)+"\n")
	extra := fmt.Sprintf(penaltyRedisConfig, rs.Addr)
	requirePenaltyRedis(t, routes, extra)
	p1 := startInstance(t, instanceOptions{ca: ca, routes: routes, extra: extra})
	// drain_timeout 1s: at SIGTERM, the login held in its delay is ended
	// after a second.
	p2 := startInstance(t, instanceOptions{ca: ca, routes: routes, extra: extra, drain: "1s"})

	// A failure on instance 1 (no route for the account): the count for
	// 127.0.0.6 is in Redis before the client hears NO.
	guesser := rawDial(t, "127.0.0.6", p1.plainAddr)
	guesser.send("a LOGIN nobody@g.test wrong\r\n")
	guesser.expect("a NO")
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	if n, err := rdb.Get(context.Background(), "test:penalty:ip:127.0.0.6/32").Int(); err != nil || n != 1 {
		t.Fatalf("redis count for 127.0.0.6 after a failure on instance 1: %d %v, want 1", n, err)
	}

	// The right password from the same address on instance 2: held in the
	// delay, once instance 2 has read the count.
	mon := startRedisMonitor(t, rs.Addr)
	held := rawDial(t, "127.0.0.6", p2.plainAddr)
	held.send("h LOGIN %s %s\r\n", guessUser, guessPass)
	mon.waitFor(t, `"get"`, `"test:penalty:ip:127.0.0.6/32"`)
	// Meanwhile another address logs in on instance 2 at once.
	other := rawDial(t, "127.0.0.7", p2.plainAddr)
	other.send("o LOGIN %s %s\r\n", guessUser, guessPass)
	other.expect("o OK")
	other.send("l LOGOUT\r\n")
	other.expect("l OK")

	// Stop instance 2: the held login never got an answer.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	out, _ := held.untilClosed()
	if strings.Contains(out, "h OK") || strings.Contains(out, "h NO") {
		t.Fatalf("the login after instance 1's failure was answered at once on instance 2: %q", out)
	}
	p2.waitLog(`msg="imap session" session=\S+ client=127\.0\.0\.6:\d+ .*reason="shutdown \(during login delay\)"`)
}

// requirePenaltyRedis skips the test while cmd/pipegate does not know
// auth_penalty.redis yet (the lead wires imapPenaltyStore).
func requirePenaltyRedis(t *testing.T, routes, extra string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.yaml")
	writeFile(t, path, "listen:\n  - addr: 127.0.0.1:1143\nroutes_file: "+routes+"\n"+extra)
	out, err := exec.Command(pipegateBin, "check-config", path).CombinedOutput()
	if err != nil && strings.Contains(string(out), "redis") && strings.Contains(string(out), "unknown field") {
		t.Skipf("auth_penalty.redis is not wired into cmd/pipegate yet:\n%s", out)
	}
	if err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
}

// TestSharedPenaltyStore: two limit.Penalty values (two instances) on one
// Redis store see each other's failures.
func TestSharedPenaltyStore(t *testing.T) {
	rs := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	store := limit.NewRedisStore(rdb, "lib:penalty:")
	onErr := func(err error) { t.Errorf("store: %v", err) }
	p1 := &limit.Penalty{Store: store, Base: time.Minute, Max: time.Hour, OnError: onErr}
	p2 := &limit.Penalty{Store: store, Base: time.Minute, Max: time.Hour, OnError: onErr}
	ctx := context.Background()
	guesser, other := netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("192.0.2.10")

	if d := p2.Delay(ctx, guesser); d != 0 {
		t.Fatalf("delay before any failure: %v", d)
	}
	p1.Fail(ctx, guesser)
	p1.Fail(ctx, guesser)
	if d := p2.Delay(ctx, guesser); d != 2*time.Minute {
		t.Errorf("instance 2 after 2 failures on instance 1: delay %v, want 2m", d)
	}
	p2.Fail(ctx, guesser)
	if d := p1.Delay(ctx, guesser); d != 4*time.Minute {
		t.Errorf("instance 1 after a third failure on instance 2: delay %v, want 4m", d)
	}
	if d := p1.Delay(ctx, other); d != 0 {
		t.Errorf("another address: delay %v, want 0", d)
	}
	p2.Success(ctx, guesser)
	if d := p1.Delay(ctx, guesser); d != 0 {
		t.Errorf("instance 1 after a success on instance 2: delay %v, want 0", d)
	}
}
