package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/listener"
)

// upstream is one configured upstream address.
type upstream struct {
	addr             string // as configured, for logs and metrics
	network, address string
	ap               netip.AddrPort // address as an IP address and port, if it is one (tcp)
	tls              *tls.Config    // nil: plain; else with ServerName set
	health           *health
}

// health counts the consecutive dial failures of one upstream address. It
// is shared by every pool and every reload that names the address.
type health struct {
	mu    sync.Mutex
	fails int
	until time.Time // skipped while now is before it
}

func (h *health) failed(now time.Time, base time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fails++
	ceiling := max(MaxBackoff, base) // a longer configured back-off is kept, not cut
	d := base << min(h.fails-1, 16)
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	h.until = now.Add(d)
}

func (h *health) succeeded() {
	h.mu.Lock()
	h.fails, h.until = 0, time.Time{}
	h.mu.Unlock()
}

func (h *health) retryAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.until
}

// healthBook maps upstream addresses to their health across reloads.
type healthBook struct {
	mu sync.Mutex
	m  map[string]*health
}

func (b *healthBook) get(addr string) *health {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*health{}
	}
	h := b.m[addr]
	if h == nil {
		h = &health{}
		b.m[addr] = h
	}
	return h
}

// pool is the upstream list of one route with its balancing.
type pool struct {
	upstreams []*upstream
	balance   Balance
	next      atomic.Uint64
}

// candidates returns the upstreams in the order to try: balanced order
// among those not backing off (round robin turns over these alone, so an
// upstream that is down gives no extra share to the one after it, as in
// HAProxy and nginx), then those backing off (soonest retry first), so
// that a connection is never refused while some upstream might still
// answer.
func (p *pool) candidates(now time.Time) []*upstream {
	n := len(p.upstreams)
	ready := make([]*upstream, 0, n)
	var waiting []*upstream
	var retry []time.Time
	for _, u := range p.upstreams {
		if at := u.health.retryAt(); now.Before(at) {
			waiting = append(waiting, u)
			retry = append(retry, at)
			continue
		}
		ready = append(ready, u)
	}
	if p.balance == RoundRobin && len(ready) > 1 {
		start := int((p.next.Add(1) - 1) % uint64(len(ready)))
		ready = slices.Concat(ready[start:], ready[:start])
	}
	if len(waiting) > 1 {
		idx := make([]int, len(waiting))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return retry[idx[a]].Before(retry[idx[b]]) })
		sorted := make([]*upstream, len(waiting))
		for i, j := range idx {
			sorted[i] = waiting[j]
		}
		waiting = sorted
	}
	return append(ready, waiting...)
}

// newUpstream resolves nothing: it only splits the address and prepares
// the TLS configuration for it.
func newUpstream(addr string, base *tls.Config, book *healthBook) (*upstream, error) {
	network, address, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	u := &upstream{addr: addr, network: network, address: address, health: book.get(addr)}
	if network == "tcp" {
		if ap, err := netip.ParseAddrPort(address); err == nil && ap.Addr().Zone() == "" {
			u.ap = ap
		}
	}
	if base != nil {
		u.tls = base.Clone()
		if u.tls.ServerName == "" {
			if network == "unix" {
				if !u.tls.InsecureSkipVerify {
					return nil, fmt.Errorf("upstream %s: TLS over a unix socket needs a server name to verify", addr)
				}
			} else {
				host, _, _ := net.SplitHostPort(address)
				u.tls.ServerName = host
			}
		}
	}
	return u, nil
}

// dialUpstream tries the candidates of p in turn, each within the dial
// timeout, and returns the first connection that is ready for bytes: dialled,
// PROXY header sent, TLS handshake done.
func dialUpstream(ctx context.Context, g *generation, p *pool, client, local netip.AddrPort) (net.Conn, *upstream, error) {
	var errs []error
	for _, u := range p.candidates(time.Now()) {
		c, err := g.dialOne(ctx, u, client, local)
		if err == nil {
			u.health.succeeded()
			return c, u, nil
		}
		if ctx.Err() != nil { // shutting down: not the upstream's fault
			return nil, nil, fmt.Errorf("dial %s: %w", u.addr, context.Cause(ctx))
		}
		u.health.failed(time.Now(), g.backoff)
		g.metrics.dialError(u.addr)
		errs = append(errs, err)
	}
	return nil, nil, errors.Join(errs...)
}

func (g *generation) dialOne(ctx context.Context, u *upstream, client, local netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, g.dialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: -1, KeepAliveConfig: net.KeepAliveConfig{Enable: false}}
	if g.keepAlive > 0 {
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: g.keepAlive, Interval: g.keepAlive, Count: 3}
	}
	c, err := d.DialContext(ctx, u.network, u.address)
	if err != nil {
		if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" && oe.Err != nil {
			err = oe.Err // "dial tcp ADDR: " would say it twice; the loops' reads the same
		}
		return nil, fmt.Errorf("dial %s: %w", u.addr, err)
	}
	if g.sendProxy == "" && u.tls == nil {
		return c, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if g.sendProxy != "" {
		if err := listener.WriteHeader(c, g.sendProxy, client, local); err != nil {
			c.Close()
			return nil, fmt.Errorf("send PROXY %s header to %s: %w", g.sendProxy, u.addr, err)
		}
	}
	if u.tls != nil {
		tc := tls.Client(c, u.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", u.addr, err)
		}
		c = tc
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream %s: %w", u.addr, err)
	}
	return c, nil
}
