package maild

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/route"
)

// poolsConfig is configtest.IMAPIssue with the pool of the affinity issue, one
// member in the short form and one in the long form.
const poolsConfig = configtest.IMAPIssue + `pools:
  shared:
    members:
      - imap://127.0.0.1:14301
      - name: b
        weight: 3
        backends: [imap+starttls://127.0.0.1:14302]
    affinity:
      store: redis
      redis: {url: "redis://127.0.0.1:6379/0"}
      expire: 15m
      kick_delay: 2s
      balance_factor: 0.5
      settle_delay: 0s
      warm_up: 3s
      outage_grace: 45s
    health:
      on_down: keep
`

func TestPoolsConfig(t *testing.T) {
	path := configtest.WriteConfig(t, poolsConfig)
	s, err := Load(path, CommandIMAP, testProtocols)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Pools) != 1 {
		t.Fatalf("pools: %+v", s.Pools)
	}
	p := s.Pools[0]
	if p.Name != "shared" || p.Redis == nil || p.Redis.Addr != "127.0.0.1:6379" || p.Expire.Minutes() != 15 || p.KickDelay.Seconds() != 2 || p.Epsilon != 0.5 {
		t.Errorf("pool: %+v", p)
	}
	if p.Settle != -1 || p.WarmUp != 3*time.Second || p.OutageGrace != 45*time.Second || p.Health == nil || p.Health.MoveOnDown || p.Health.Protocol != "imap" {
		t.Errorf("settle_delay: 0s, warm_up, outage_grace, on_down: keep: %+v %+v", p, p.Health)
	}
	if len(p.Members) != 2 {
		t.Fatalf("members: %+v", p.Members)
	}
	a, b := p.Members[0], p.Members[1]
	if a.Name != "127.0.0.1:14301" || a.Weight != 1 || a.Backends["imap"].Addr != "127.0.0.1:14301" {
		t.Errorf("short form: %+v", a)
	}
	if b.Name != "b" || b.Weight != 3 || b.Backends["imap"].TLS != route.TLSStartTLS {
		t.Errorf("long form: %+v", b)
	}
}

func TestPoolsConfigErrors(t *testing.T) {
	base := configtest.IMAPIssue + "pools:\n  shared:\n"
	redis := "    affinity:\n      redis: {addr: 127.0.0.1:6379}\n"
	cases := []configErrorCase{
		{"no members", base + redis, []string{":12: pools.shared.members: missing"}},
		{"no redis", base + "    members: [imap://127.0.0.1:1]\n", []string{":12: pools.shared.affinity.redis: missing"}},
		{"bad url", base + "    members:\n      - ftp://h:1\n" + redis, []string{":14: pools.shared.members[0]: backend \"ftp://h:1\": unknown scheme"}},
		{"pool in pool", base + "    members:\n      - pool:other\n" + redis, []string{":14: pools.shared.members[0]: \"pool:other\": a member is a backend, not a pool"}},
		{"member kind", base + "    members:\n      - [a, b]\n" + redis, []string{":14: pools.shared.members[0]: a member is a backend URL or a mapping"}},
		{"member field", base + "    members:\n      - name: a\n        backend: imap://h:1\n" + redis, []string{":15: pools.shared.members[0].backend: unknown field"}},
		{"negative weight", base + "    members:\n      - name: a\n        weight: -1\n        backends: [imap://h:1]\n" + redis, []string{":15: pools.shared.members[0].weight: -1: want 0 to 1000 (0 drains the member)"}},
		{"weight too big", base + "    members:\n      - name: a\n        weight: 1001\n        backends: [imap://h:1]\n" + redis, []string{":15: pools.shared.members[0].weight: 1001: want 0 to 1000"}},
		{"duplicate", base + "    members:\n      - imap://h:1\n      - name: h:1\n        backends: [imap://h:2]\n" + redis, []string{":15: pools.shared.members[1].name: \"h:1\" is also pools.shared.members[0]"}},
		{"two imap", base + "    members:\n      - name: a\n        backends: [imap://h:1, imaps://h:2]\n" + redis, []string{":15: pools.shared.members[0].backends[1]: a second imap backend"}},
		{"store", base + "    members: [imap://h:1]\n    affinity:\n      store: etcd\n      redis: {addr: 127.0.0.1:6379}\n", []string{":15: pools.shared.affinity.store: \"etcd\": unknown store"}},
		{"balance", base + "    members: [imap://h:1]\n" + redis + "      balance_factor: 0\n", []string{":16: pools.shared.affinity.balance_factor: 0: want more than 0"}},
		{"outage grace", base + "    members: [imap://h:1]\n" + redis + "      outage_grace: -1s\n", []string{":16: pools.shared.affinity.outage_grace: negative duration \"-1s\""}},
		{"negative settle", base + "    members: [imap://h:1]\n" + redis + "      settle_delay: -1s\n", []string{":16: pools.shared.affinity.settle_delay: negative duration \"-1s\""}},
		{"negative kick delay", base + "    members: [imap://h:1]\n" + redis + "      kick_delay: -2s\n", []string{":16: pools.shared.affinity.kick_delay: negative duration \"-2s\""}},
		{"negative interval", base + "    members: [imap://h:1]\n" + redis + "    health:\n      interval: -1s\n", []string{":17: pools.shared.health.interval: negative duration \"-1s\""}},
		{"bad name", configtest.IMAPIssue + "pools:\n  a.b:\n    members: [imap://h:1]\n" + redis, []string{":12: pools.a.b: pool name \"a.b\""}},
		{"health user without password", base + "    members: [imap://h:1]\n" + redis + "    health:\n      user: probe@a.test\n", []string{"pools.shared.health.password_file: missing"}},
		{"health protocol", base + "    members: [imap://h:1]\n" + redis + "    health:\n      protocol: pop3\n", []string{":17: pools.shared.health.protocol: \"pop3\": the members have no pop3 backend"}},
		{"on_down", base + "    members: [imap://h:1]\n" + redis + "    health:\n      on_down: panic\n", []string{":17: pools.shared.health.on_down: \"panic\": want move"}},
		{"health password missing", base + "    members: [imap://h:1]\n" + redis + "    health:\n      user: probe@a.test\n      password_file: gone.pass\n", []string{"pools.shared.health.password_file: open ", "gone.pass"}},
	}
	checkConfigErrors(t, cases)
}

// TestPoolsConfigProtocols: every member serves the same protocols, and
// those of the listeners.
func TestPoolsConfigProtocols(t *testing.T) {
	config := `listen:
  - addr: 127.0.0.1:1143
  - addr: 127.0.0.1:1110
    protocol: pop3
routes_file: routes.yaml
allow_plaintext_auth: true
pools:
  shared:
    members:
      - name: a
        backends: [imap://h:1, pop3://h:2]
      - name: b
        backends: [imap://h:3]
    affinity:
      redis: {addr: 127.0.0.1:6379}
`
	path := configtest.WriteConfig(t, config)
	_, err := Check(path, testProtocols)
	if err == nil || !strings.Contains(err.Error(), filepath.Base(path)+":13: pools.shared.members[1].backends: serves imap, the first member imap, pop3") {
		t.Errorf("got %v", err)
	}
	config = strings.Replace(config, "        backends: [imap://h:3]", "        backends: [imap://h:3, pop3://h:4]", 1)
	config = strings.Replace(config, "imap://h:1, pop3://h:2", "imap://h:1", 1)
	config = strings.Replace(config, "imap://h:3, pop3://h:4", "imap://h:3", 1)
	writeTestFile(t, path, config)
	_, err = Check(path, testProtocols)
	if err == nil || !strings.Contains(err.Error(), "pools.shared.members: no member has a pop3 backend") {
		t.Errorf("got %v", err)
	}
}

// TestRoutesNameUnknownPool: a routes_file that names a pool the pools:
// block does not have is a config error naming the routes file's line and
// field (its logins could only be unavailable); one it has is fine.
func TestRoutesNameUnknownPool(t *testing.T) {
	path := configtest.WriteConfig(t, poolsConfig)
	routes := filepath.Join(filepath.Dir(path), "routes.yaml")
	writeTestFile(t, routes, "routes:\n  - domain: a.test\n    backend: pool:shared\ndefault: pool:nope\n")
	err := check(path)
	if want := routes + ":4: default: pool:nope: no such pool in imap.yaml's pools: block"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("check: %v, want %q", err, want)
	}
	writeTestFile(t, routes, "default: pool:shared\n")
	if err := check(path); err != nil {
		t.Errorf("a pool the config has: %v", err)
	}
}

// TestLoginHold: a pool holds a user for a login in progress longer than
// the backend login can take, and never less than affinity's default.
func TestLoginHold(t *testing.T) {
	for _, c := range []struct {
		login, backend, want time.Duration
	}{
		{0, 0, affinity.DefaultLease},
		{5 * time.Minute, 0, affinity.DefaultLease}, // the backend timeout, 30s, bounds it
		{5 * time.Minute, 2 * time.Minute, 2*time.Minute + sessionEndTimeout},
		{90 * time.Second, 10 * time.Minute, 90*time.Second + sessionEndTimeout},
		{10 * time.Second, 5 * time.Second, affinity.DefaultLease},
	} {
		if got := loginHold(Settings{LoginTimeout: c.login, BackendTimeout: c.backend}); got != c.want {
			t.Errorf("login_timeout %v, backend_timeout %v: hold %v, want %v", c.login, c.backend, got, c.want)
		}
	}
}
