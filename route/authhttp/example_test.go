package authhttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/authhttp"
)

func Example() {
	// An auth service as operators write them for nginx.
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Auth-User") == "alice@a.test" && r.Header.Get("Auth-Pass") == "secret" {
			w.Header().Set("Auth-Status", "OK")
			w.Header().Set("Auth-Server", "127.0.0.1")
			w.Header().Set("Auth-Port", "993")
			w.Header().Set("X-Pipegate-Backend-TLS", "tls")
			return
		}
		w.Header().Set("Auth-Status", "Invalid login or password")
		w.Header().Set("Auth-Wait", "3")
	}))
	defer service.Close()

	src, err := authhttp.New(authhttp.Config{URL: service.URL + "/auth", PassPassword: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	for _, pw := range []string{"secret", "guess"} {
		rt, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@a.test",
			Password: pw, AuthMethod: "login", Attempt: 1, ClientAddr: netip.MustParseAddrPort("192.0.2.7:50000")})
		var denied *route.Denied
		switch {
		case errors.As(err, &denied):
			fmt.Printf("NO %s (retry in %v)\n", denied.Text, denied.Wait)
		case err != nil:
			fmt.Println("NO [UNAVAILABLE]", err)
		default:
			fmt.Println("route:", rt.Backends)
		}
	}
	// Output:
	// route: [imaps://127.0.0.1:993]
	// NO Invalid login or password (retry in 3s)
}
