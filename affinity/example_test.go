package affinity_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pipegate/pipegate/affinity"
	"github.com/redis/go-redis/v9"
)

// A ring with bounded loads: m1 is the user's member while it has room,
// and a drained (weight 0) member never gets a new user.
func ExampleRing() {
	ring := affinity.NewRing([]affinity.Member{{Name: "m1", Weight: 1}, {Name: "m2", Weight: 1}, {Name: "m3", Weight: 0}}, 0)
	first, _ := ring.Pick("alice@example.test", nil, nil, 0)
	// The same member again; with its load far over the bound, the next one.
	again, _ := ring.Pick("alice@example.test", nil, nil, 0)
	full, _ := ring.Pick("alice@example.test", map[string]int{first: 100}, nil, 0)
	fmt.Println(first == again, full != first, full != "m3")
	// Output: true true true
}

// The gateway's use around one login.
func ExampleStore() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", MaxRetries: -1})
	aff, err := affinity.New(affinity.Config{
		Client:  rdb,
		Pool:    "shared",
		Members: []affinity.Member{{Name: "imap://10.0.0.1:143", Weight: 1}, {Name: "imap://10.0.0.2:143", Weight: 1}},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	go aff.Subscribe(ctx, nil) // for the life of the process

	member, lease, err := aff.Assign(ctx, "alice@example.test")
	if err != nil {
		fmt.Println("NO [UNAVAILABLE] try again later")
		return
	}
	defer aff.SessionEnd(context.Background(), lease) // after the connection closed
	fmt.Println("dial", member, "and log in")
	if err := aff.SessionStart(ctx, lease); err != nil {
		fmt.Println("* BYE", err)
		return
	}
	<-lease.Kicked() // (or the session ends) a move: say BYE and close
}
