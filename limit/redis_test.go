package limit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/internal/freeport"
)

// startRedis runs a private redis-server on a free loopback port with its
// own directory and no persistence, and returns a client for it. Skipped
// without the binary unless PIPEGATE_REQUIRE_REAL=1.
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("PIPEGATE_REQUIRE_REAL") == "1" {
			t.Fatalf("redis-server not found (Debian package redis-server): %v", err)
		}
		t.Skip("redis-server not found; apt-get install redis-server")
	}
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		port := freePort(t)
		if c, ok := runRedis(t, bin, port); ok {
			return c
		}
	}
	t.Fatal("redis-server did not start in 3 attempts")
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runRedis starts redis-server and waits for its "Ready to accept
// connections" log line; false when it exited first.
func runRedis(t *testing.T, bin string, port int) (*redis.Client, bool) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", "", "--loglevel", "notice")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	ready := make(chan bool, 1)
	drained := make(chan struct{})
	var log strings.Builder
	go watchRedisLog(out, &log, ready, drained)
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	var ok bool
	select {
	case ok = <-ready:
	case <-timer.C:
	}
	stop := func() {
		_ = cmd.Process.Kill()
		<-drained
		_ = cmd.Wait()
	}
	if !ok {
		stop()
		t.Logf("redis-server on port %d did not become ready:\n%s", port, log.String())
		return nil, false
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() {
		c.Close()
		stop()
	})
	return c, true
}

// watchRedisLog reads redis-server's output until EOF, reporting on ready
// whether it became ready (false if it exited first). It keeps draining so
// that the server never blocks on a full pipe. log is written only before
// ready is sent.
func watchRedisLog(r io.Reader, log *strings.Builder, ready chan<- bool, drained chan<- struct{}) {
	defer close(drained)
	sc := bufio.NewScanner(r)
	sent := false
	for sc.Scan() {
		if sent {
			continue
		}
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ready to accept connections") {
			ready <- true
			sent = true
		}
	}
	if !sent {
		ready <- false
	}
	_, _ = io.Copy(io.Discard, r)
}

func TestRedisStore(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	s := NewRedisStore(rdb, "test:")
	for i := int64(1); i <= 3; i++ {
		n, err := s.Fail(ctx, "k", time.Minute)
		if err != nil || n != i {
			t.Fatalf("Fail #%d = %d, %v", i, n, err)
		}
	}
	if n, err := s.Failures(ctx, "k"); err != nil || n != 3 {
		t.Fatalf("Failures = %d, %v", n, err)
	}
	ttl, err := rdb.PTTL(ctx, "test:k").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL = %v, %v; want (0, 1m]", ttl, err)
	}
	if n, err := s.Failures(ctx, "unknown"); err != nil || n != 0 {
		t.Fatalf("unknown key: %d, %v", n, err)
	}
	if err := s.Reset(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Failures(ctx, "k"); err != nil || n != 0 {
		t.Fatalf("after Reset: %d, %v", n, err)
	}
	// Expiry is Redis's job: a key whose TTL passed is gone.
	if _, err := s.Fail(ctx, "short", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := rdb.PExpire(ctx, "test:short", 0).Err(); err != nil { // expire now, no waiting
		t.Fatal(err)
	}
	if n, err := s.Failures(ctx, "short"); err != nil || n != 0 {
		t.Fatalf("expired key: %d, %v", n, err)
	}
}

// Two instances (two Penalty values, two clients) share one count.
func TestRedisPenaltySharedByInstances(t *testing.T) {
	rdb := startRedis(t)
	rdb2 := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	defer rdb2.Close()
	ctx := context.Background()
	one := &Penalty{Store: NewRedisStore(rdb, "pg:")}
	two := &Penalty{Store: NewRedisStore(rdb2, "pg:")}
	ip := netip.MustParseAddr("2001:db8::1")
	one.Fail(ctx, ip)
	two.Fail(ctx, netip.MustParseAddr("2001:db8::2"))
	one.Fail(ctx, ip)
	if d := two.Delay(ctx, ip); d != 8*time.Second {
		t.Fatalf("second instance sees delay %v, want 8s after 3 failures", d)
	}
	if keys, _ := rdb.Keys(ctx, "pg:*").Result(); len(keys) != 1 || keys[0] != "pg:ip:2001:db8::/64" {
		t.Fatalf("keys %v", keys)
	}
	two.Success(ctx, ip)
	if d := one.Delay(ctx, ip); d != 0 {
		t.Fatalf("after success on the other instance: %v", d)
	}
}

func TestRedisStoreDown(t *testing.T) {
	port := freePort(t) // nothing listens there
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	var errs int
	p := &Penalty{Store: NewRedisStore(rdb, "x:"), OnError: func(error) { errs++ }}
	ip := netip.MustParseAddr("127.0.0.1")
	p.Fail(context.Background(), ip)
	if d := p.Delay(context.Background(), ip); d != 0 {
		t.Fatalf("delay %v with redis down", d)
	}
	if errs != 2 {
		t.Fatalf("%d errors reported, want 2", errs)
	}
}
