package limit

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Exceeded is the error Conns.Acquire returns past a limit.
type Exceeded struct {
	Limit string // "total" or "per-ip"
	Max   int
}

func (e *Exceeded) Error() string {
	return fmt.Sprintf("connection limit exceeded: %s max %d", e.Limit, e.Max)
}

// Conns counts open connections against a total and a per-client-address
// limit (see Key for how addresses are grouped). It is safe for concurrent
// use; a nil *Conns allows everything, and so does the zero Conns (it
// counts, with no limits until SetLimits).
type Conns struct {
	maxTotal, maxPerIP int // 0: unlimited

	mu   sync.Mutex
	open int
	byIP map[netip.Prefix]int
}

// NewConns returns a limiter; 0 (or less) means unlimited.
func NewConns(total, perIP int) *Conns {
	return &Conns{maxTotal: max(total, 0), maxPerIP: max(perIP, 0), byIP: map[netip.Prefix]int{}}
}

// Acquire counts a new connection from ip, or returns an *Exceeded error
// when a limit is reached (and counts nothing). Call release when the
// connection closes; calling it more than once is harmless.
func (c *Conns) Acquire(ip netip.Addr) (release func(), err error) {
	if c == nil {
		return func() {}, nil
	}
	key := Key(ip)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxTotal > 0 && c.open >= c.maxTotal {
		return nil, &Exceeded{Limit: "total", Max: c.maxTotal}
	}
	if c.maxPerIP > 0 && c.byIP[key] >= c.maxPerIP {
		return nil, &Exceeded{Limit: "per-ip", Max: c.maxPerIP}
	}
	c.open++
	if c.byIP == nil { // the zero Conns
		c.byIP = map[netip.Prefix]int{}
	}
	c.byIP[key]++
	var released atomic.Bool
	return func() {
		if released.CompareAndSwap(false, true) {
			c.release(key)
		}
	}, nil
}

func (c *Conns) release(key netip.Prefix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if n := c.byIP[key] - 1; n > 0 {
		c.byIP[key] = n
	} else {
		delete(c.byIP, key)
	}
}

// SetLimits changes the limits (0 or less: unlimited) and keeps counting
// the connections already open: a connection past a lowered limit is not
// closed, but new ones are refused until enough have been released.
func (c *Conns) SetLimits(total, perIP int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxTotal, c.maxPerIP = max(total, 0), max(perIP, 0)
}

// Open returns the number of connections acquired and not yet released.
func (c *Conns) Open() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// OpenFrom returns the number of open connections counted for ip's group.
func (c *Conns) OpenFrom(ip netip.Addr) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byIP[Key(ip)]
}
