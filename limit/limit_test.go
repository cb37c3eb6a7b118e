package limit

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	}
	for _, tt := range tests {
		if got := Key(netip.MustParseAddr(tt.in)).String(); got != tt.want {
			t.Errorf("Key(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if Key(netip.Addr{}).IsValid() {
		t.Error("Key(invalid) is valid")
	}
}

func TestConnsLimits(t *testing.T) {
	a := netip.MustParseAddr("127.0.0.1")
	b := netip.MustParseAddr("127.0.0.2")
	v6a := netip.MustParseAddr("2001:db8::1")
	v6b := netip.MustParseAddr("2001:db8::2") // same /64 as v6a
	type step struct {
		ip      netip.Addr
		wantErr string // "", "total" or "per-ip"
	}
	tests := []struct {
		name         string
		total, perIP int
		steps        []step
	}{
		{"unlimited", 0, 0, []step{{a, ""}, {a, ""}, {a, ""}, {b, ""}}},
		{"per ip", 0, 2, []step{{a, ""}, {a, ""}, {a, "per-ip"}, {b, ""}, {b, ""}, {b, "per-ip"}}},
		{"total", 3, 0, []step{{a, ""}, {b, ""}, {a, ""}, {b, "total"}}},
		{"both", 3, 2, []step{{a, ""}, {a, ""}, {a, "per-ip"}, {b, ""}, {b, "total"}}},
		{"IPv6 by /64", 0, 1, []step{{v6a, ""}, {v6b, "per-ip"}}},
		{"unknown address is one bucket", 0, 1, []step{{netip.Addr{}, ""}, {netip.Addr{}, "per-ip"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConns(tt.total, tt.perIP)
			var releases []func()
			for i, s := range tt.steps {
				rel, err := c.Acquire(s.ip)
				if s.wantErr == "" {
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					releases = append(releases, rel)
					continue
				}
				var ex *Exceeded
				if !errors.As(err, &ex) || ex.Limit != s.wantErr {
					t.Fatalf("step %d: err = %v, want %s limit", i, err, s.wantErr)
				}
			}
			if c.Open() != len(releases) {
				t.Fatalf("Open = %d, want %d", c.Open(), len(releases))
			}
			for _, r := range releases {
				r()
				r() // idempotent
			}
			if c.Open() != 0 || len(c.byIP) != 0 {
				t.Fatalf("after release: Open = %d, %d addresses", c.Open(), len(c.byIP))
			}
		})
	}
}

// SetLimits keeps the open connections counted against the new limits.
func TestConnsSetLimits(t *testing.T) {
	a := netip.MustParseAddr("127.0.0.1")
	b := netip.MustParseAddr("127.0.0.2")
	c := NewConns(0, 0)
	var releases []func()
	for _, ip := range []netip.Addr{a, a, b} {
		rel, err := c.Acquire(ip)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, rel)
	}
	c.SetLimits(3, 0)
	if _, err := c.Acquire(b); err == nil || err.(*Exceeded).Limit != "total" {
		t.Fatalf("past the new total limit: err = %v", err)
	}
	c.SetLimits(0, 2)
	if _, err := c.Acquire(a); err == nil || err.(*Exceeded).Limit != "per-ip" {
		t.Fatalf("past the new per-ip limit: err = %v", err)
	}
	rel, err := c.Acquire(b)
	if err != nil {
		t.Fatalf("b has room: %v", err)
	}
	releases[0]()
	if _, err := c.Acquire(a); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	rel()
	if c.Open() != 3 {
		t.Fatalf("Open = %d, want 3", c.Open())
	}
	var nilConns *Conns
	nilConns.SetLimits(1, 1) // harmless
}

func TestConnsNilAndErrorText(t *testing.T) {
	var c *Conns
	rel, err := c.Acquire(netip.MustParseAddr("127.0.0.1"))
	if err != nil || c.Open() != 0 {
		t.Fatal(err)
	}
	rel()
	if msg := (&Exceeded{Limit: "per-ip", Max: 3}).Error(); msg != "connection limit exceeded: per-ip max 3" {
		t.Fatal(msg)
	}
}

func TestConnsConcurrent(t *testing.T) {
	const workers, total, perIP = 64, 20, 6
	c := NewConns(total, perIP)
	ips := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"),
		netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4"),
	}
	type result struct {
		ip  netip.Addr
		rel func()
		err error
	}
	results := make(chan result, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(ip netip.Addr) {
			defer wg.Done()
			<-start
			rel, err := c.Acquire(ip)
			results <- result{ip, rel, err}
		}(ips[i%len(ips)])
	}
	close(start)
	wg.Wait()
	close(results)
	per := map[netip.Addr]int{}
	var rels []func()
	for r := range results {
		if r.err == nil {
			per[r.ip]++
			rels = append(rels, r.rel)
		}
	}
	if len(rels) != total {
		t.Fatalf("%d acquired, want the total limit %d", len(rels), total)
	}
	for ip, n := range per {
		if n > perIP {
			t.Errorf("%s: %d acquired, per-ip limit %d", ip, n, perIP)
		}
	}
	// Release concurrently, twice each.
	for _, r := range rels {
		wg.Add(2)
		go func() { defer wg.Done(); r() }()
		go func() { defer wg.Done(); r() }()
	}
	wg.Wait()
	if c.Open() != 0 {
		t.Fatalf("Open = %d after release", c.Open())
	}
}

// clock is a manual clock for the memory store.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestPenaltyDelays(t *testing.T) {
	tests := []struct {
		name       string
		base, max  time.Duration
		failures   int
		wantDelays []time.Duration // Delay after 1, 2, ... failures
	}{
		{"dovecot defaults", 0, 0, 6, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second}},
		{"custom", 100 * time.Millisecond, time.Second, 5, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p := &Penalty{Base: tt.base, Max: tt.max}
			ip := netip.MustParseAddr("127.0.0.9")
			if d := p.Delay(ctx, ip); d != 0 {
				t.Fatalf("no failures: delay %v", d)
			}
			for i := range tt.failures {
				p.Fail(ctx, ip)
				if d := p.Delay(ctx, ip); d != tt.wantDelays[i] {
					t.Fatalf("after %d failures: delay %v, want %v", i+1, d, tt.wantDelays[i])
				}
			}
			if d := p.Delay(ctx, netip.MustParseAddr("127.0.0.10")); d != 0 {
				t.Fatalf("other address delayed %v", d)
			}
			p.Success(ctx, ip)
			if d := p.Delay(ctx, ip); d != 0 {
				t.Fatalf("after success: delay %v", d)
			}
		})
	}
	if d := (&Penalty{}).DelayFor(1 << 40); d != DefaultPenaltyMax {
		t.Fatalf("huge failure count: %v", d)
	}
}

func TestPenaltyForgetAndIPv6(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	p := &Penalty{Store: NewMemoryStoreClock(0, clk.Now), Forget: 5 * time.Minute}
	ip := netip.MustParseAddr("2001:db8::1")
	neighbour := netip.MustParseAddr("2001:db8::ffff") // same /64
	stranger := netip.MustParseAddr("2001:db8:0:1::1") // next /64
	p.Fail(ctx, ip)
	p.Fail(ctx, neighbour)
	if d := p.Delay(ctx, ip); d != 4*time.Second {
		t.Fatalf("two failures in one /64: delay %v", d)
	}
	if d := p.Delay(ctx, stranger); d != 0 {
		t.Fatalf("other /64 delayed %v", d)
	}
	clk.Advance(4 * time.Minute)
	p.Fail(ctx, ip) // renews forget
	clk.Advance(4 * time.Minute)
	if d := p.Delay(ctx, ip); d != 8*time.Second {
		t.Fatalf("8 minutes after the first failure, 4 after the last: delay %v", d)
	}
	clk.Advance(time.Minute)
	if d := p.Delay(ctx, ip); d != 0 {
		t.Fatalf("forget passed: delay %v", d)
	}
	p.Fail(ctx, ip)
	if d := p.Delay(ctx, ip); d != 2*time.Second {
		t.Fatalf("fresh start: delay %v", d)
	}
}

func TestMemoryStoreBounded(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	s := NewMemoryStoreClock(3, clk.Now).(*memoryStore)
	for _, k := range []string{"a", "b", "c", "a", "d"} { // "a" renewed, so "b" is oldest
		clk.Advance(time.Second)
		if _, err := s.Fail(ctx, k, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int64{"a": 2, "b": 0, "c": 1, "d": 1}
	for k, w := range want {
		if n, _ := s.Failures(ctx, k); n != w {
			t.Errorf("%s: %d failures, want %d", k, n, w)
		}
	}
	if len(s.keys) != 3 || s.lru.Len() != 3 {
		t.Fatalf("%d keys, %d in list; want 3", len(s.keys), s.lru.Len())
	}
	// Many keys stay bounded.
	for i := range 1000 {
		_, _ = s.Fail(ctx, string(rune('A'+i%500))+"x", time.Hour)
	}
	if len(s.keys) > 3 {
		t.Fatalf("%d keys > bound 3", len(s.keys))
	}
}

// failingStore returns errors for everything.
type failingStore struct{}

var errDown = errors.New("store down")

func (failingStore) Fail(context.Context, string, time.Duration) (int64, error) { return 0, errDown }
func (failingStore) Failures(context.Context, string) (int64, error)            { return 0, errDown }
func (failingStore) Reset(context.Context, string) error                        { return errDown }

func TestPenaltyStoreErrors(t *testing.T) {
	ctx := context.Background()
	var errs []error
	p := &Penalty{Store: failingStore{}, OnError: func(err error) { errs = append(errs, err) }}
	ip := netip.MustParseAddr("127.0.0.1")
	p.Fail(ctx, ip)
	if d := p.Delay(ctx, ip); d != 0 {
		t.Fatalf("delay %v with a failing store", d)
	}
	p.Success(ctx, ip)
	if len(errs) != 3 {
		t.Fatalf("OnError called %d times, want 3", len(errs))
	}
	var nilP *Penalty
	nilP.Fail(ctx, ip)
	nilP.Success(ctx, ip)
	if nilP.Delay(ctx, ip) != 0 {
		t.Fatal("nil penalty delays")
	}
}

func TestPenaltyWait(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	p := &Penalty{Base: time.Hour}
	if err := p.Wait(context.Background(), ip); err != nil {
		t.Fatalf("no failures: %v", err)
	}
	p.Fail(context.Background(), ip)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx, ip); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

// hangingStore blocks until its context ends.
type hangingStore struct{}

func (hangingStore) Fail(ctx context.Context, _ string, _ time.Duration) (int64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}
func (hangingStore) Failures(ctx context.Context, _ string) (int64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}
func (hangingStore) Reset(ctx context.Context, _ string) error { <-ctx.Done(); return ctx.Err() }

func TestPenaltyStoreTimeout(t *testing.T) {
	var errs []error
	p := &Penalty{Store: hangingStore{}, StoreTimeout: time.Millisecond, OnError: func(err error) { errs = append(errs, err) }}
	ip := netip.MustParseAddr("127.0.0.1")
	p.Fail(context.Background(), ip)
	if d := p.Delay(context.Background(), ip); d != 0 {
		t.Fatalf("delay %v", d)
	}
	p.Success(context.Background(), ip)
	if len(errs) != 3 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("errors %v, want 3 deadline errors", errs)
	}
}

// TestMemoryStoreForgottenKeyRestarts: a key whose failures were
// forgotten starts again at 1 on its next failure, even when the store's
// sweep (which looks at the oldest entries only) has not removed it yet,
// and Penalty's delay restarts at its base with it.
func TestMemoryStoreForgottenKeyRestarts(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0)
	p := &Penalty{Store: NewMemoryStoreClock(0, func() time.Time { return now }), Forget: time.Minute}
	for i := range 65 { // older entries than the sweep's 64 per call
		p.Fail(ctx, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	now = now.Add(time.Second)
	ip := netip.MustParseAddr("192.0.2.1")
	for range 4 {
		p.Fail(ctx, ip)
	}
	now = now.Add(time.Hour)
	p.Fail(ctx, ip)
	if n, err := p.Store.Failures(ctx, keyString(ip)); n != 1 || err != nil {
		t.Errorf("failures of a key forgotten an hour ago, after one more: %d, %v; want 1", n, err)
	}
	if d := p.Delay(ctx, ip); d != DefaultPenaltyBase {
		t.Errorf("delay after one failure an hour after the last: %v, want %v", d, DefaultPenaltyBase)
	}
}

// TestConnsZeroValue: the zero Conns counts with no limits (it panicked on
// a nil map), and takes limits later.
func TestConnsZeroValue(t *testing.T) {
	var c Conns
	ip := netip.MustParseAddr("127.0.0.1")
	release, err := c.Acquire(ip)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLimits(0, 1)
	if _, err := c.Acquire(ip); err == nil {
		t.Error("a second connection from the address passed a per-address limit of 1")
	}
	release()
	if r, err := c.Acquire(ip); err != nil {
		t.Errorf("after the release: %v", err)
	} else {
		r()
	}
}
