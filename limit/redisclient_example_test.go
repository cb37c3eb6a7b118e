package limit_test

import (
	"context"
	"net/netip"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/limit"
)

// Several instances share the failure counts through one Redis server; a
// Redis that is down costs the delay, never the login.
func ExampleNewRedisPenaltyStore() {
	store, closeStore := limit.NewRedisPenaltyStore(&redis.Options{Addr: "10.0.0.20:6379", Password: "from a password_file"}, "")
	defer closeStore()
	p := &limit.Penalty{Store: store}
	client := netip.MustParseAddr("192.0.2.7")
	if err := p.Wait(context.Background(), client); err != nil {
		return // the context ended during the delay
	}
}
