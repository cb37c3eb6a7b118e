package limit

import (
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisPrefix prefixes the keys (one per client address group) of
// a store made by NewRedisPenaltyStore with an empty prefix.
const DefaultRedisPrefix = "pipegate:penalty:"

// RedisTimeout bounds a connect, read or write of a store made by
// NewRedisPenaltyStore; Penalty.StoreTimeout bounds each call as well.
const RedisTimeout = time.Second

// NewRedisPenaltyStore returns a store kept in Redis on a client of its
// own, made from opts (address, password, DB, TLS; from a config file's
// redis block, say) with what the login path needs: RedisTimeout for
// connects, reads and writes, no retries (a missed count is better than a
// slow login), no CLIENT SETINFO round trip and no maintenance
// notifications (no background goroutine). opts is not modified. An empty
// prefix is DefaultRedisPrefix.
//
// It connects to nothing: a Redis that is down at start, or later, costs
// the delay, never a login. closeStore releases the client's connections.
func NewRedisPenaltyStore(opts *redis.Options, prefix string) (store PenaltyStore, closeStore func() error) {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	client := NewRedisClient(opts)
	return NewRedisStore(client, prefix), client.Close
}

// NewRedisClient returns a client made from opts for the login path, as
// NewRedisPenaltyStore's and the affinity pools' are: RedisTimeout for
// connects, reads and writes, no retries, no CLIENT SETINFO round trip and
// no maintenance notifications. opts is not modified.
func NewRedisClient(opts *redis.Options) *redis.Client {
	o := *opts
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = RedisTimeout, RedisTimeout, RedisTimeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(&o)
}
