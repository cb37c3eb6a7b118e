package limit_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/limit"
)

// Several instances share the failure counts through one Redis server; a
// Redis that is down costs the delay, never the login. (Here nothing
// listens on the address: the store's error goes to OnError, and the
// login is not held.)
func ExampleNewRedisPenaltyStore() {
	store, closeStore := limit.NewRedisPenaltyStore(&redis.Options{Addr: "127.0.0.1:1", Password: "from a password_file"}, "")
	defer closeStore()
	failed := false
	p := &limit.Penalty{Store: store, OnError: func(error) { failed = true }}
	client := netip.MustParseAddr("192.0.2.7")
	if err := p.Wait(context.Background(), client); err != nil {
		return // the context ended during the delay
	}
	fmt.Println("login goes on; the store failed:", failed)
	// Output: login goes on; the store failed: true
}
