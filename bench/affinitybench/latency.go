package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/bench/internal/benchproc"
)

// The latency figure's pool.
const latPool = "lat"

// affinityLatency times what the gateway adds to one login, without
// Dovecot: Assign, SessionStart and SessionEnd of one lease, sequential,
// for users with an assignment (hit) and without (new); rounds batches of
// n, the median batch's mean.
func affinityLatency(addr string, n, rounds int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Set(ctx, memPrefix+"{"+latPool+"}:epoch", 0, 0).Err(); err != nil {
		return err
	}
	store, err := affinity.New(affinity.Config{
		Client: rdb, Pool: latPool, Prefix: memPrefix,
		Members: []affinity.Member{{Name: "10.0.0.11:143", Weight: 1}, {Name: "10.0.0.12:143", Weight: 1}, {Name: "10.0.0.13:143", Weight: 1}},
	})
	if err != nil {
		return err
	}
	subDone := make(chan error, 1)
	go subscribe(ctx, store, subDone)
	<-store.Joined()
	once := func(user string) error {
		_, l, err := store.Assign(ctx, user)
		if err != nil {
			return err
		}
		if err := store.SessionStart(ctx, l); err != nil {
			return err
		}
		return store.SessionEnd(ctx, l)
	}
	var hit, fresh []float64
	for r := range rounds {
		for _, kind := range []string{"hit", "new"} {
			start := time.Now()
			for i := range n {
				user := fmt.Sprintf("hit%05d@example.com", i)
				if kind == "new" {
					user = fmt.Sprintf("new%03d-%05d@example.com", r, i)
				}
				if err := once(user); err != nil {
					return fmt.Errorf("%s login %d: %w", kind, i, err)
				}
			}
			us := float64(time.Since(start).Microseconds()) / float64(n)
			if r == 0 && kind == "hit" {
				continue // the first hit pass assigns
			}
			if kind == "hit" {
				hit = append(hit, us)
			} else {
				fresh = append(fresh, us)
			}
		}
	}
	fmt.Printf("\n== affinity per login (Assign + SessionStart + SessionEnd, sequential, loopback Redis) ==\n")
	for _, k := range []struct {
		name string
		us   []float64
	}{{"hit", hit}, {"new", fresh}} {
		s := benchproc.SpreadOf(k.us)
		fmt.Printf("%-10s %8.0f us median (%.0f-%.0f)\n", k.name, s.Med, s.Lo, s.Hi)
	}
	cancel()
	<-subDone
	return nil
}
