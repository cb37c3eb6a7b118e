package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
	"github.com/pipegate/pipegate/internal/freeport"
	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/pipegate/pipegate/internal/testenv"
)

// The key prefix of the login lines' pool.
const loginPrefix = "bench:aff:"

// dovecotTuning makes Dovecot serve many logins from few processes
// (its "high-performance" login mode), as bench/imapbench does.
const dovecotTuning = `
service imap-login {
  service_count = 0
  process_min_avail = 1
  process_limit = 8
  client_limit = 4096
}
default_client_limit = 8192
`

type bench struct {
	logins, rounds int

	dir      string
	redis    *realserver.Redis
	dovecot  *testenv.Dovecot
	pipegate *benchproc.Process
	addr     string // pipegate's IMAP listener
	// accounts of each line, all with password pass
	direct, hit, fresh []string
}

const pass = "bench-pw"

func (b *bench) setUp(ctx context.Context, pipegateBin string) error {
	var err error
	if b.dir, err = benchproc.TempDir("pipegate-affinitybench-"); err != nil {
		return err
	}
	if b.redis, err = realserver.StartRedis(b.dir); err != nil {
		return err
	}
	users := map[string]string{}
	for i := range b.logins {
		b.direct = append(b.direct, fmt.Sprintf("d%05d@d.test", i))
		b.hit = append(b.hit, fmt.Sprintf("h%05d@p.test", i))
	}
	for i := range b.logins {
		b.fresh = append(b.fresh, fmt.Sprintf("n%05d@p.test", i))
	}
	for _, l := range [][]string{b.direct, b.hit, b.fresh} {
		for _, u := range l {
			users[u] = pass
		}
	}
	b.dovecot, err = testenv.NewDovecot(benchproc.Binary("dovecot"), testenv.DovecotOptions{
		Users: users, TrustedNetworks: []string{"127.0.0.1/32"}, Extra: dovecotTuning,
	})
	if err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: b.redis.Addr})
	defer rdb.Close()
	// A Redis that has held the pool for long: no warm-up.
	if err := rdb.Set(ctx, loginPrefix+"{shared}:epoch", 0, 0).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	pgDir := filepath.Join(b.dir, "pipegate")
	if err := os.Mkdir(pgDir, 0o755); err != nil {
		return err
	}
	if b.addr, err = freeport.Addr(); err != nil {
		return err
	}
	routes := filepath.Join(pgDir, "routes.yaml")
	if err := os.WriteFile(routes, []byte(fmt.Sprintf(`routes:
  - domain: d.test
    backend: imap://%s
  - domain: p.test
    backend: pool:shared
`, b.dovecot.Addr)), 0o600); err != nil {
		return err
	}
	config := filepath.Join(pgDir, "mail.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`listen:
  - addr: %s
routes_file: %s
allow_plaintext_auth: true
auth_failure_delay: 1ms
log:
  level: warn
pools:
  shared:
    members: [imap://%s]
    affinity:
      store: redis
      redis: {url: "redis://%s/0"}
      prefix: "%s"
`, b.addr, routes, b.dovecot.Addr, b.redis.Addr, loginPrefix)), 0o600); err != nil {
		return err
	}
	b.pipegate, err = benchproc.Start(ctx, benchproc.Server{
		Name: "pipegate", Argv: []string{pipegateBin, "mail", "--config", config},
		Log: filepath.Join(pgDir, "pipegate.log"), Listen: []string{b.addr},
	})
	if err != nil {
		return err
	}
	// Sessions count once the instance has joined the pool (its first
	// heartbeat).
	for deadline := time.Now().Add(15 * time.Second); ; {
		if n, err := rdb.ZCard(ctx, loginPrefix+"{shared}:inst").Result(); err == nil && n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pipegate did not join the pool in Redis within 15s")
		}
		time.Sleep(20 * time.Millisecond) // polling another process, with a deadline
	}
}

func (b *bench) tearDown() {
	if b.pipegate != nil {
		b.pipegate.Stop()
	}
	if b.dovecot != nil {
		b.dovecot.Close()
		os.RemoveAll(b.dovecot.Dir)
	}
	if b.redis != nil {
		b.redis.Stop()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
