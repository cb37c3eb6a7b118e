package affinity_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/admin"
	"github.com/pipegate/pipegate/affinity"
)

// A probe that connects and reads the greeting; RunHealth shares the
// checks with the other instances of the pool.
func ExampleStore_RunHealth() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", MaxRetries: -1})
	aff, err := affinity.New(affinity.Config{Client: rdb, Pool: "shared", Members: []affinity.Member{{Name: "10.0.0.1:143", Weight: 1}}})
	if err != nil {
		log.Fatal(err)
	}
	probe := func(ctx context.Context, member string) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", member)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			c.SetDeadline(dl)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("greeting: %w", err)
		}
		if !strings.HasPrefix(line, "* OK") {
			return fmt.Errorf("greeting %q", line)
		}
		return nil // the gateway's probe also logs in a test account
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go aff.RunHealth(ctx, affinity.HealthConfig{Fall: 3, Rise: 2, OnChange: func(m string, up bool, err error) {
		log.Printf("member %s up=%v: %v", m, up, err)
	}}, probe)
}

// The admin API next to /metrics and /healthz on the metrics listener.
func ExampleHandler() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", MaxRetries: -1})
	aff, err := affinity.New(affinity.Config{Client: rdb, Pool: "shared", Members: []affinity.Member{{Name: "imap://10.0.0.1:143", Weight: 1}}})
	if err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(aff.Collector())
	mux := http.NewServeMux()
	mux.Handle("/", admin.Handler(reg, nil))
	api := affinity.Handler(map[string]*affinity.Store{"shared": aff})
	mux.Handle("/affinity", api)
	mux.Handle("/affinity/", api)
	srv, err := admin.Start("127.0.0.1:9143", mux, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
}
