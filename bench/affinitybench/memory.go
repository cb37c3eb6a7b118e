package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/affinity"
)

// The memory figure's pool, apart from the login lines' one.
const (
	memPrefix = "benchmem:"
	memPool   = "mem"
)

// memoryPerAssignment writes n assignments through the affinity library
// (as n users logging in on one instance of a three-member pool), then a
// session each, and prints Redis's memory per user for both.
func memoryPerAssignment(addr string, n, sample, workers int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 2 * workers})
	defer rdb.Close()
	if err := rdb.Set(ctx, memPrefix+"{"+memPool+"}:epoch", 0, 0).Err(); err != nil {
		return err
	}
	store, err := affinity.New(affinity.Config{
		Client: rdb, Pool: memPool, Prefix: memPrefix,
		Members: []affinity.Member{{Name: "10.0.0.11:143", Weight: 1}, {Name: "10.0.0.12:143", Weight: 1}, {Name: "10.0.0.13:143", Weight: 1}},
	})
	if err != nil {
		return err
	}
	subDone := make(chan error, 1)
	go subscribe(ctx, store, subDone)
	<-store.Joined()
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("user%07d@example.com", i)
	}
	leases := make([]*affinity.Lease, n)
	if err := parallel(n, workers, func(i int) error {
		_, l, err := store.Assign(ctx, users[i])
		leases[i] = l
		return err
	}); err != nil {
		return fmt.Errorf("assign: %w", err)
	}
	idle, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	idleKey, err := sampleUsage(ctx, rdb, users, sample)
	if err != nil {
		return err
	}
	if err := parallel(n, workers, func(i int) error { return store.SessionStart(ctx, leases[i]) }); err != nil {
		return fmt.Errorf("session start: %w", err)
	}
	live, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	liveKey, err := sampleUsage(ctx, rdb, users, sample)
	if err != nil {
		return err
	}
	ix, err := rdb.MemoryUsage(ctx, memPrefix+"{"+memPool+"}:ix:"+store.Instance(), 0).Result()
	if err != nil {
		return fmt.Errorf("MEMORY USAGE of the instance index: %w", err)
	}
	perIdle := float64(idle-before) / float64(n)
	perLive := float64(live-before) / float64(n)
	fmt.Printf("\n== Redis memory per user, %d users of a 3-member pool, one instance ==\n", n)
	fmt.Printf("%-34s %12s %14s\n", "", "bytes/user", "at 1M users")
	row := func(name string, b float64) { fmt.Printf("%-34s %12.1f %12.1f MiB\n", name, b, b*1e6/(1<<20)) }
	row("INFO used_memory, idle (assigned)", perIdle)
	row("INFO used_memory, with a session", perLive)
	row("MEMORY USAGE u:USER, idle", idleKey)
	row("MEMORY USAGE u:USER, with session", liveKey)
	row("MEMORY USAGE ix:INSTANCE / users", float64(ix)/float64(n))
	for i := range leases {
		_ = store.SessionEnd(ctx, leases[i])
	}
	cancel()
	<-subDone
	return nil
}

// subscribe runs the store's instance work until ctx ends.
func subscribe(ctx context.Context, s *affinity.Store, done chan<- error) {
	done <- s.Subscribe(ctx, nil)
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(n, workers int, f func(int) error) error {
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go worker(&wg, jobs, errs, f)
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}

// worker runs f on the jobs until they end, keeping its first error.
func worker(wg *sync.WaitGroup, jobs <-chan int, errs chan<- error, f func(int) error) {
	defer wg.Done()
	var first error
	for i := range jobs {
		if err := f(i); err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		errs <- first
	}
}

// usedMemory is INFO memory's used_memory.
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// sampleUsage is the mean MEMORY USAGE (all samples) of sample users' keys.
func sampleUsage(ctx context.Context, rdb *redis.Client, users []string, sample int) (float64, error) {
	sample = max(1, min(sample, len(users)))
	step := len(users) / sample
	var total int64
	for i := range sample {
		v, err := rdb.MemoryUsage(ctx, memPrefix+"{"+memPool+"}:u:"+users[i*step], 0).Result()
		if err != nil {
			return 0, fmt.Errorf("MEMORY USAGE %s: %w", users[i*step], err)
		}
		total += v
	}
	return float64(total) / float64(sample), nil
}
