package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/admin"
)

// Take an instance out of the load balancer before a deploy: /healthz
// answers 503 while draining.
func ExampleStart() {
	var draining atomic.Bool
	h := admin.Handler(prometheus.NewRegistry(), func() error {
		if draining.Load() {
			return errors.New("draining")
		}
		return nil
	})
	srv, err := admin.Start("127.0.0.1:0", h, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, d := range []bool{false, true} {
		draining.Store(d)
		resp, err := client.Get("http://" + srv.Addr() + "/healthz")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s", resp.StatusCode, body)
	}
	// Output:
	// 200 ok
	// 503 draining
}
