package affinity

import (
	"context"
	"fmt"
	"testing"

	"github.com/pipegate/pipegate/internal/realserver"
)

func benchStore(b *testing.B) *Store {
	realserver.Need(b, redisErr)
	s := newStore(b, newClient(b, redisSrv.Addr), testPool(b), nil)
	run(b, s, nil)
	assign(b, s, "warm-up")
	return s
}

// BenchmarkAssignHit: a user with a live assignment (one round trip).
func BenchmarkAssignHit(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	_, l := assign(b, s, "hit")
	s.SessionEnd(ctx, l)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, l, err := s.Assign(ctx, "hit")
		if err != nil {
			b.Fatal(err)
		}
		s.SessionEnd(ctx, l)
	}
}

// BenchmarkAssignMiss: a new user each time (pool state, ring, claim).
func BenchmarkAssignMiss(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, l, err := s.Assign(ctx, fmt.Sprintf("miss%d", i))
		if err != nil {
			b.Fatal(err)
		}
		s.SessionEnd(ctx, l)
	}
}

// BenchmarkMemoryPerUser reports Redis's MEMORY USAGE of the keys of an
// assigned user with one live session (its hash and its entry in the
// instance's index), averaged over a sample.
func BenchmarkMemoryPerUser(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const sample = 1000
	for i := 0; i < sample; i++ {
		session(b, s, fmt.Sprintf("user%07d@example.test", i))
	}
	var hash int64
	for i := 0; i < sample; i++ {
		n, err := s.rdb.MemoryUsage(ctx, s.k.user(fmt.Sprintf("user%07d@example.test", i))).Result()
		if err != nil {
			b.Fatal(err)
		}
		hash += n
	}
	index, err := s.rdb.MemoryUsage(ctx, s.k.index(s.Instance()), 0).Result()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(hash)/sample, "hash-bytes/user")
	b.ReportMetric(float64(index)/sample, "index-bytes/user")
	b.ReportMetric(float64(hash+index)/sample*1e6/(1<<20), "MiB/1M-users")
	for i := 0; i < b.N; i++ {
	}
}
