package redis_test

import (
	"context"
	"errors"
	"log"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/redis"
)

// With `SET route:alice@a.test "imaps://10.0.0.1:993 imaps://10.0.0.2:993"`
// in Redis, alice's route has two backends, tried in order.
func ExampleNew() {
	src, err := redis.New(redis.Config{URL: "redis://127.0.0.1:6379/0", Key: "route:%u", Lowercase: true})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	rt, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "Alice@a.test"})
	switch {
	case errors.Is(err, route.ErrNotFound):
		log.Print("no key route:alice@a.test")
	case err != nil:
		log.Print("redis unavailable: ", err)
	default:
		log.Print(rt.Backends)
	}
}
