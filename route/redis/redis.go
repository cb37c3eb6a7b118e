// Package redis is a route source that reads backend URLs from Redis: a key
// made from the account holds one backend URL, or several separated by
// spaces (tried in order).
//
//	src, err := redis.New(redis.Config{
//		URL: "redis://127.0.0.1:6379/0",
//		Key: "route:%u", // %u account, %n local part, %d domain
//	})
//	if err != nil { ... }
//	defer src.Close()
//	rt, err := src.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
//
// with, in Redis:
//
//	SET route:alice@a.test "imaps://10.0.0.1:993 imaps://10.0.0.2:993"
//
// A missing key is route.ErrNotFound (a chain asks its next source); a
// Redis that is down or does not answer before ctx's deadline is an error,
// and the next lookup tries again, so the source recovers by itself.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/pipegate/pipegate/internal/ascii"
	"github.com/pipegate/pipegate/route"
)

// Config says where the routes are.
type Config struct {
	// URL of the server: redis://[[user]:password@]host:port[/db],
	// rediss:// for TLS, or unix:///path/redis.sock.
	URL string
	// Password, if set, overrides a password in URL (the config reads it
	// from password_file). It is never in logs or errors.
	Password string
	// Key is the key template; default "route:%u".
	Key string
	// Lowercase puts the account in lower case before filling Key, so
	// Alice@A.test and alice@a.test share a key.
	Lowercase bool
	// TLS, if not nil, is used for rediss:// (default: system roots).
	TLS *tls.Config
	// DialTimeout bounds connecting (default 2s); a lookup is bounded by
	// its context too.
	DialTimeout time.Duration
	// PoolSize is the number of connections kept (default 10 per CPU).
	PoolSize int
}

// Source looks routes up in Redis. It is safe for concurrent use.
type Source struct {
	cfg      Config
	client   *goredis.Client
	where    string                 // for errors: the server, without password
	password atomic.Pointer[string] // for new connections; SetPassword replaces it
}

// New checks cfg and makes the client; it does not connect yet.
func New(cfg Config) (*Source, error) {
	if cfg.URL == "" {
		return nil, errors.New("route/redis: url: empty")
	}
	if cfg.Key == "" {
		cfg.Key = "route:%u"
	}
	if _, err := route.Expand(cfg.Key, "user@example.org", nil); err != nil {
		return nil, fmt.Errorf("route/redis: key: %w", err)
	}
	opt, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("route/redis: url: %w", err)
	}
	s := &Source{where: opt.Network + ":" + opt.Addr}
	user, pw := opt.Username, opt.Password
	if cfg.Password != "" {
		pw = cfg.Password
	}
	cfg.Password = "" // kept in s.password only
	s.password.Store(&pw)
	opt.Username, opt.Password = "", ""
	opt.CredentialsProvider = func() (string, string) { return user, *s.password.Load() }
	if cfg.TLS != nil && opt.TLSConfig != nil {
		opt.TLSConfig = cfg.TLS.Clone()
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	opt.DialTimeout = cfg.DialTimeout
	opt.ContextTimeoutEnabled = true // a lookup's deadline bounds reads and writes
	opt.MaxRetries = 1               // one retry for a pooled connection the server closed
	opt.MinRetryBackoff = time.Millisecond
	opt.MaxRetryBackoff = 20 * time.Millisecond
	opt.DialerRetries = 1      // a server that refuses is down now: say so at once
	opt.DisableIdentity = true // no CLIENT SETINFO round trip on connect
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if cfg.PoolSize > 0 {
		opt.PoolSize = cfg.PoolSize
	}
	opt.MinIdleConns = 0 // made on demand: New connects to nothing (check-config)
	s.cfg, s.client = cfg, goredis.NewClient(opt)
	return s, nil
}

// SetPassword replaces the password for the connections made from now
// on (a rotated secret, re-read on reload); pooled connections stay.
func (s *Source) SetPassword(pw string) { s.password.Store(&pw) }

// Lookup reads the account's key.
func (s *Source) Lookup(ctx context.Context, req route.Request) (route.Route, error) {
	account := req.Account
	if s.cfg.Lowercase {
		account = ascii.Lower(account)
	}
	key, err := route.Expand(s.cfg.Key, account, nil)
	if err != nil {
		return route.Route{}, fmt.Errorf("route/redis: key: %w", err)
	}
	val, err := s.client.Get(ctx, key).Result()
	if errors.Is(err, goredis.Nil) {
		return route.Route{}, route.ErrNotFound
	}
	if err != nil {
		return route.Route{}, fmt.Errorf("route/redis: GET %s from %s: %w", key, s.where, err)
	}
	backends, err := parseValue(val)
	if err != nil {
		return route.Route{}, fmt.Errorf("route/redis: key %s on %s: %w", key, s.where, err)
	}
	return route.Route{Backends: backends}, nil
}

// maxValue bounds a value: route.MaxBackends URLs of a generous length.
const maxValue = 64 << 10

// parseValue reads one or more backend URLs separated by white space.
func parseValue(val string) ([]route.Backend, error) {
	if len(val) > maxValue {
		return nil, fmt.Errorf("value of %d bytes (more than %d)", len(val), maxValue)
	}
	fields := strings.Fields(val)
	if len(fields) == 0 {
		return nil, errors.New("empty value (want one or more backend URLs)")
	}
	if len(fields) > route.MaxBackends {
		return nil, fmt.Errorf("more than %d backends", route.MaxBackends)
	}
	backends := make([]route.Backend, 0, len(fields))
	for _, f := range fields {
		b, err := route.ParseBackend(f)
		if err != nil {
			return nil, err
		}
		backends = append(backends, b)
	}
	return backends, nil
}

// Close closes the connections.
func (s *Source) Close() error { return s.client.Close() }
