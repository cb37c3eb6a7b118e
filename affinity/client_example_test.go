package affinity_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/pipegate/pipegate/affinity"
)

// Drain a member of the pool on a running instance, then move its users
// off it; a refusal of the API is a *StatusError.
func ExampleClient() {
	c := &affinity.Client{Base: "http://127.0.0.1:9143"} // the instance's metrics_addr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	w, err := c.SetWeight(ctx, "shared", "imap://10.0.0.2:143", 0)
	var se *affinity.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		log.Fatalf("no such member: %s", se.API.Error)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s drained (configured weight %d)\n", w.Member, w.ConfiguredWeight)

	ev, err := c.Evacuate(ctx, "shared", w.Member)
	for _, m := range ev.Moved { // also the moves done before an error
		fmt.Printf("%s: %s -> %s\n", m.User, m.From, m.To)
	}
	if err != nil {
		log.Fatal(err)
	}
}
