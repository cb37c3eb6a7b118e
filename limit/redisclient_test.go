package limit

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestNewRedisPenaltyStore: a store on its own client counts under the
// default prefix, with the password of opts, and leaves opts alone.
func TestNewRedisPenaltyStore(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "AUTH", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.7")

	opts := &redis.Options{Addr: rdb.Options().Addr, Password: "s3cret", DB: 0}
	store, closeStore := NewRedisPenaltyStore(opts, "")
	defer closeStore()
	if opts.MaxRetries != 0 || opts.DialTimeout != 0 || opts.MaintNotificationsConfig != nil {
		t.Fatalf("opts modified: %+v", opts)
	}
	p := &Penalty{Store: store, Base: time.Minute, Max: time.Hour, OnError: func(err error) { t.Errorf("store: %v", err) }}
	p.Fail(ctx, ip)
	p.Fail(ctx, ip)
	if n, err := rdb.Get(ctx, DefaultRedisPrefix+"ip:192.0.2.7/32").Int(); err != nil || n != 2 {
		t.Fatalf("count under the default prefix: %d, %v; want 2", n, err)
	}

	// A wrong password: every call fails, and fails alone (no retries),
	// so the login sees no delay.
	bad, closeBad := NewRedisPenaltyStore(&redis.Options{Addr: rdb.Options().Addr, Password: "wrong"}, "x:")
	defer closeBad()
	var errs int
	pb := &Penalty{Store: bad, Base: time.Minute, OnError: func(error) { errs++ }}
	if d := pb.Delay(ctx, ip); d != 0 || errs != 1 {
		t.Fatalf("wrong password: delay %v, %d errors; want 0 and 1", d, errs)
	}

	if err := closeStore(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Failures(ctx, "k"); err == nil {
		t.Fatal("a closed store still answers")
	}
}
