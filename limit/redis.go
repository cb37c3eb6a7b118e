package limit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedisStore returns a store kept in Redis under prefix+key, so that
// several pipegate instances share one count per client address. Fail is
// INCR then PEXPIRE in one MULTI transaction; the key's time to live is
// the forget duration, renewed by every failure.
func NewRedisStore(client *redis.Client, prefix string) PenaltyStore {
	return &redisStore{client: client, prefix: prefix}
}

type redisStore struct {
	client *redis.Client
	prefix string
}

func (r *redisStore) Fail(ctx context.Context, key string, forget time.Duration) (int64, error) {
	k := r.prefix + key
	var incr *redis.IntCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, k)
		p.PExpire(ctx, k, forget)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("penalty store redis: INCR %s: %w", k, err)
	}
	return incr.Val(), nil
}

func (r *redisStore) Failures(ctx context.Context, key string) (int64, error) {
	k := r.prefix + key
	n, err := r.client.Get(ctx, k).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("penalty store redis: GET %s: %w", k, err)
	}
	return n, nil
}

func (r *redisStore) Reset(ctx context.Context, key string) error {
	k := r.prefix + key
	if err := r.client.Del(ctx, k).Err(); err != nil {
		return fmt.Errorf("penalty store redis: DEL %s: %w", k, err)
	}
	return nil
}
