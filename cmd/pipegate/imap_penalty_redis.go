package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/pipegate/pipegate/limit"
)

// imapPenaltyRedisConfig is auth_penalty.redis: the failure counts per
// client address kept in Redis, so that several instances behind one load
// balancer delay a password guesser together (see docs/instances.md).
//
//	auth_penalty:
//	  base: 2s
//	  redis:
//	    addr: 10.0.0.20:6379
//	    password_file: /etc/pipegate/redis.pass   # optional
//	    db: 0
//	    prefix: "pipegate:penalty:"
type imapPenaltyRedisConfig struct {
	Addr         string `yaml:"addr"`
	PasswordFile string `yaml:"password_file"`
	DB           int    `yaml:"db"`
	Prefix       string `yaml:"prefix"`
}

// imapPenaltyRedisDefaultPrefix prefixes the keys (one per client address)
// when prefix is not given.
const imapPenaltyRedisDefaultPrefix = "pipegate:penalty:"

// imapPenaltyRedisTimeout bounds a connect, read or write to Redis; each
// store call is bounded by limit.Penalty.StoreTimeout as well, and a store
// error never holds a login (the delay is then 0).
const imapPenaltyRedisTimeout = time.Second

// imapPenaltyStore returns the shared penalty store cfg describes. A
// relative password_file must have been resolved against the config
// file's folder by the caller. It does not connect: a Redis that is down
// at start, or later, costs the delay, never a login.
//
// The returned close func releases the Redis client (its pool).
func imapPenaltyStore(cfg imapPenaltyRedisConfig) (limit.PenaltyStore, func() error, error) {
	if cfg.Addr == "" {
		return nil, nil, errors.New("auth_penalty.redis.addr: missing (want HOST:PORT of the Redis server)")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, nil, fmt.Errorf("auth_penalty.redis.addr: %q: want HOST:PORT (%v)", cfg.Addr, err)
	}
	if cfg.DB < 0 {
		return nil, nil, fmt.Errorf("auth_penalty.redis.db: %d: must not be negative", cfg.DB)
	}
	var password string
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("auth_penalty.redis.password_file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return nil, nil, fmt.Errorf("auth_penalty.redis.password_file: %s is empty", cfg.PasswordFile)
		}
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = imapPenaltyRedisDefaultPrefix
	}
	client := redis.NewClient(&redis.Options{
		Addr:                  cfg.Addr,
		Password:              password,
		DB:                    cfg.DB,
		DialTimeout:           imapPenaltyRedisTimeout,
		ReadTimeout:           imapPenaltyRedisTimeout,
		WriteTimeout:          imapPenaltyRedisTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,   // the login waits for no retry: a missed count is better than a slow login
		DisableIdentity:       true, // no CLIENT SETINFO round trip on connect
		// No maintenance-notification handshake and no background
		// circuit-breaker goroutine: this is one plain Redis server.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return limit.NewRedisStore(client, prefix), client.Close, nil
}
