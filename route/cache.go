package route

import (
	"container/list"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// DefaultCacheEntries bounds a Cache made with maxEntries <= 0.
const DefaultCacheEntries = 10000

// Cached is an in-process cache in front of a Router, made by Cache. It is
// safe for concurrent use.
type Cached struct {
	r           Router
	positiveTTL time.Duration
	negativeTTL time.Duration
	max         int
	now         func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]*list.Element
	lru     list.List // front: most recently used; values are *cacheEntry
	epoch   uint64    // Purges so far
}

type cacheKey struct{ protocol, account string }

type cacheEntry struct {
	key     cacheKey
	rt      Route
	err     error // nil, or an ErrNotFound
	expires time.Time
}

// Cache remembers r's answers, keyed by protocol and account exactly as the
// client sent it: a route for positiveTTL, an ErrNotFound for negativeTTL
// (a TTL <= 0 caches nothing of that kind). It holds at most maxEntries
// answers (DefaultCacheEntries if maxEntries <= 0), dropping the least
// recently used. Errors other than ErrNotFound (a source that is down, a
// *Denied, a timeout) are never cached, so a source that comes back is
// asked again on the next lookup.
//
// The key ignores the client's address and password: do not cache a source
// whose answer depends on them (network rules, auth_http checking
// passwords). A hit costs no round trip; a miss costs one, to r.
func Cache(r Router, positiveTTL, negativeTTL time.Duration, maxEntries int) *Cached {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	return &Cached{
		r:           r,
		positiveTTL: positiveTTL,
		negativeTTL: negativeTTL,
		max:         maxEntries,
		now:         time.Now,
		entries:     map[cacheKey]*list.Element{},
	}
}

// Lookup answers from the cache or asks the source.
func (c *Cached) Lookup(ctx context.Context, req Request) (Route, error) {
	key := cacheKey{req.Protocol, req.Account}
	hit, epoch := c.get(key)
	if hit != nil {
		return copyRoute(hit.rt), hit.err
	}
	rt, err := c.r.Lookup(ctx, req)
	switch {
	case err == nil && c.positiveTTL > 0:
		c.put(key, rt, nil, c.positiveTTL, epoch)
	case errors.Is(err, ErrNotFound) && c.negativeTTL > 0:
		c.put(key, Route{}, err, c.negativeTTL, epoch)
	}
	return rt, err
}

// get answers from the cache (an entry the caller copies from); when it
// cannot (nil), epoch is the Purge count the answer the caller then asks
// for must be put with.
func (c *Cached) get(key cacheKey) (hit *cacheEntry, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, c.epoch
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return nil, c.epoch
	}
	c.lru.MoveToFront(el)
	return e, 0
}

// put caches an answer asked for at epoch, unless a Purge came since: the
// source may have answered from before its reload.
func (c *Cached) put(key cacheKey, rt Route, err error, ttl time.Duration, epoch uint64) {
	e := &cacheEntry{key: key, rt: copyRoute(rt), err: err, expires: c.now().Add(ttl)}
	e.rt.Checked = false // a password checked once says nothing of the next one
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if el, ok := c.entries[key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}

// Purge forgets every cached answer (call it after reloading the sources).
func (c *Cached) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++ // answers asked for before are not cached
	clear(c.entries)
	c.lru.Init()
}

// Len is the number of answers held, expired ones included until touched.
func (c *Cached) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// copyRoute keeps callers from changing what the cache holds.
func copyRoute(rt Route) Route {
	rt.Backends = slices.Clone(rt.Backends)
	return rt
}
