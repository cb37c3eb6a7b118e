package route_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pipegate/pipegate/route"
)

// A chain of a slow directory behind a cache, a fixed map, and a per-lookup
// timeout around it all.
func ExampleChain() {
	directory := route.RouterFunc(func(ctx context.Context, req route.Request) (route.Route, error) {
		if req.Account != "alice@a.test" {
			return route.Route{}, route.ErrNotFound
		}
		b, err := route.ParseBackend("imaps://127.0.0.1:19932")
		return route.Route{Backends: []route.Backend{b}}, err
	})
	fallback := route.RouterFunc(func(ctx context.Context, req route.Request) (route.Route, error) {
		b, err := route.ParseBackend("imap+starttls://127.0.0.1:14301")
		return route.Route{Backends: []route.Backend{b}}, err
	})
	r := route.WithTimeout(route.Chain(
		route.Cache(directory, time.Minute, 10*time.Second, 10000),
		fallback,
	), 2*time.Second)

	for _, account := range []string{"alice@a.test", "bob@a.test"} {
		rt, err := r.Lookup(context.Background(), route.Request{Protocol: "imap", Account: account})
		var denied *route.Denied
		switch {
		case errors.As(err, &denied):
			fmt.Println("NO", denied.Text)
		case errors.Is(err, route.ErrNotFound):
			fmt.Println("NO unknown account")
		case err != nil:
			fmt.Println("NO [UNAVAILABLE]", err)
		default:
			fmt.Println(account, "→", rt.Backends[0])
		}
	}
	// Output:
	// alice@a.test → imaps://127.0.0.1:19932
	// bob@a.test → imap+starttls://127.0.0.1:14301
}

func ExampleExpand() {
	key, _ := route.Expand("route:%d:%n", "alice@a.test", nil)
	fmt.Println(key)
	// Output: route:a.test:alice
}
