package route

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errDown = errors.New("connect: connection refused")

// fixed answers with one backend, or err.
func fixed(addr string, err error, calls *atomic.Int32) Router {
	return RouterFunc(func(ctx context.Context, req Request) (Route, error) {
		if calls != nil {
			calls.Add(1)
		}
		if err != nil {
			return Route{}, err
		}
		return Route{Backends: []Backend{{Protocol: "imap", Addr: addr}}}, nil
	})
}

func TestChain(t *testing.T) {
	denied := &Denied{Text: "go away", Wait: 3 * time.Second}
	tests := []struct {
		name    string
		sources []Router
		want    string // backend address, or "" for an error
		wantErr error
	}{
		{"empty", nil, "", ErrNotFound},
		{"first answers", []Router{fixed("a:1", nil, nil), fixed("b:1", nil, nil)}, "a:1", nil},
		{"not found passes on", []Router{fixed("", ErrNotFound, nil), fixed("b:1", nil, nil)}, "b:1", nil},
		{"wrapped not found passes on", []Router{fixed("", fmt.Errorf("ldap: %w", ErrNotFound), nil), fixed("b:1", nil, nil)}, "b:1", nil},
		{"all not found", []Router{fixed("", ErrNotFound, nil), fixed("", ErrNotFound, nil)}, "", ErrNotFound},
		{"denied stops", []Router{fixed("", denied, nil), fixed("b:1", nil, nil)}, "", denied},
		{"down stops", []Router{fixed("", errDown, nil), fixed("b:1", nil, nil)}, "", errDown},
		{"continue on error", []Router{ContinueOnError(fixed("", errDown, nil)), fixed("b:1", nil, nil)}, "b:1", nil},
		{"continue on error, nothing later", []Router{ContinueOnError(fixed("", errDown, nil)), fixed("", ErrNotFound, nil)}, "", errDown},
		{"continue on error keeps denied", []Router{ContinueOnError(fixed("", denied, nil)), fixed("b:1", nil, nil)}, "", denied},
		{"continue on error, not found", []Router{ContinueOnError(fixed("", ErrNotFound, nil)), fixed("b:1", nil, nil)}, "b:1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := Chain(tt.sources...).Lookup(context.Background(), Request{Account: "a@a.test"})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(tt.wantErr, errDown) && errors.Is(err, ErrNotFound) {
					t.Fatal("a source that is down reads as not found")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.Backends[0].Addr != tt.want {
				t.Fatalf("backend %s, want %s", rt.Backends[0].Addr, tt.want)
			}
		})
	}
}

func TestChainDeniedIsADenied(t *testing.T) {
	_, err := Chain(fixed("", &Denied{Text: "Invalid login", Wait: time.Second}, nil)).Lookup(context.Background(), Request{})
	var d *Denied
	if !errors.As(err, &d) || d.Text != "Invalid login" || d.Wait != time.Second {
		t.Fatalf("err = %#v", err)
	}
}

// clock is a settable time for Cache tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCache(r Router, pos, neg time.Duration, max int) (*Cached, *clock) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := Cache(r, pos, neg, max)
	c.now = clk.now
	return c, clk
}

func TestCachePositive(t *testing.T) {
	var calls atomic.Int32
	c, clk := newTestCache(fixed("a:1", nil, &calls), time.Minute, time.Second, 10)
	ctx := context.Background()
	req := Request{Protocol: "imap", Account: "alice@a.test"}
	for i := 0; i < 3; i++ {
		rt, err := c.Lookup(ctx, req)
		if err != nil || rt.Backends[0].Addr != "a:1" {
			t.Fatalf("lookup %d: %v %v", i, rt, err)
		}
		rt.Backends[0].Addr = "changed by caller"
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("source asked %d times, want 1 (then hits)", n)
	}
	clk.advance(59 * time.Second)
	if _, err := c.Lookup(ctx, req); err != nil || calls.Load() != 1 {
		t.Fatalf("before expiry: asked %d times, err %v", calls.Load(), err)
	}
	clk.advance(time.Second)
	if _, err := c.Lookup(ctx, req); err != nil || calls.Load() != 2 {
		t.Fatalf("after expiry: asked %d times, err %v; want a new lookup", calls.Load(), err)
	}
	// The key is protocol and account.
	if _, err := c.Lookup(ctx, Request{Protocol: "pop3", Account: "alice@a.test"}); err != nil || calls.Load() != 3 {
		t.Fatalf("other protocol: asked %d times", calls.Load())
	}
	if _, err := c.Lookup(ctx, Request{Protocol: "imap", Account: "bob@a.test"}); err != nil || calls.Load() != 4 {
		t.Fatalf("other account: asked %d times", calls.Load())
	}
	c.Purge()
	if c.Len() != 0 {
		t.Fatalf("after Purge: %d entries", c.Len())
	}
	if _, err := c.Lookup(ctx, req); err != nil || calls.Load() != 5 {
		t.Fatalf("after Purge: asked %d times", calls.Load())
	}
}

func TestCacheNegativeAndErrors(t *testing.T) {
	var calls atomic.Int32
	var answer atomic.Pointer[error]
	store := func(err error) { answer.Store(&err) }
	store(ErrNotFound)
	src := RouterFunc(func(ctx context.Context, req Request) (Route, error) {
		calls.Add(1)
		if err := *answer.Load(); err != errNone {
			return Route{}, err
		}
		return Route{Backends: []Backend{{Addr: "a:1"}}}, nil
	})
	c, clk := newTestCache(src, time.Minute, 10*time.Second, 10)
	ctx := context.Background()
	req := Request{Protocol: "imap", Account: "x@a.test"}
	for i := 0; i < 2; i++ {
		if _, err := c.Lookup(ctx, req); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("negative answer: asked %d times, want 1", calls.Load())
	}
	clk.advance(10 * time.Second)

	// Down, denied: asked every time, never cached.
	for _, e := range []error{errDown, &Denied{Text: "no"}, context.DeadlineExceeded} {
		store(e)
		before := calls.Load()
		for i := 0; i < 2; i++ {
			if _, err := c.Lookup(ctx, req); !errors.Is(err, e) {
				t.Fatalf("err = %v, want %v", err, e)
			}
		}
		if calls.Load()-before != 2 {
			t.Fatalf("%v: asked %d times for 2 lookups, want 2 (no caching)", e, calls.Load()-before)
		}
	}
	// The source recovers: the next lookup gets the route.
	store(errNone)
	if rt, err := c.Lookup(ctx, req); err != nil || rt.Backends[0].Addr != "a:1" {
		t.Fatalf("after recovery: %v %v", rt, err)
	}
}

var errNone = errors.New("no error")

func TestCacheZeroTTLCachesNothing(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestCache(fixed("a:1", nil, &calls), 0, 0, 10)
	for i := 0; i < 3; i++ {
		if _, err := c.Lookup(context.Background(), Request{Account: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 3 || c.Len() != 0 {
		t.Fatalf("asked %d times, %d entries; want 3 and 0", calls.Load(), c.Len())
	}
}

func TestCacheBoundedLRU(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestCache(fixed("a:1", nil, &calls), time.Hour, time.Hour, 3)
	ctx := context.Background()
	look := func(a string) {
		t.Helper()
		if _, err := c.Lookup(ctx, Request{Account: a}); err != nil {
			t.Fatal(err)
		}
	}
	look("a")
	look("b")
	look("c")
	look("a") // a is now the most recently used; b the least
	look("d") // evicts b
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	before := calls.Load()
	look("a")
	look("c")
	look("d")
	if calls.Load() != before {
		t.Fatalf("a, c, d should be cached")
	}
	look("b")
	if calls.Load() != before+1 {
		t.Fatalf("b should have been evicted")
	}
	if Cache(nil, 0, 0, 0).max != DefaultCacheEntries {
		t.Fatal("maxEntries <= 0 does not give the default bound")
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := Cache(fixed("a:1", nil, nil), time.Minute, time.Minute, 50)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				acct := fmt.Sprintf("u%d@a.test", (i*7+g)%100)
				if _, err := c.Lookup(context.Background(), Request{Account: acct}); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					c.Purge()
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 50 {
		t.Fatalf("Len = %d, bound is 50", c.Len())
	}
}

func TestWithTimeoutHangingSource(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	// A source that ignores its context.
	hang := RouterFunc(func(ctx context.Context, req Request) (Route, error) {
		<-release
		return Route{}, nil
	})
	_, err := WithTimeout(hang, 20*time.Millisecond).Lookup(context.Background(), Request{Account: "a@a.test"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal("a timeout reads as not found")
	}
}

func TestWithTimeoutSourceHonoursContext(t *testing.T) {
	src := RouterFunc(func(ctx context.Context, req Request) (Route, error) {
		<-ctx.Done()
		return Route{}, fmt.Errorf("dial: %w", ctx.Err())
	})
	_, err := WithTimeout(src, 20*time.Millisecond).Lookup(context.Background(), Request{Account: "a@a.test"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestWithTimeoutParentCancelled(t *testing.T) {
	src := RouterFunc(func(ctx context.Context, req Request) (Route, error) {
		<-ctx.Done()
		return Route{}, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := WithTimeout(src, time.Hour).Lookup(ctx, Request{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
}

func TestWithTimeoutPassesAnswers(t *testing.T) {
	r := WithTimeout(fixed("a:1", nil, nil), time.Minute)
	if rt, err := r.Lookup(context.Background(), Request{}); err != nil || rt.Backends[0].Addr != "a:1" {
		t.Fatalf("%v %v", rt, err)
	}
	r = WithTimeout(fixed("", ErrNotFound, nil), time.Minute)
	if _, err := r.Lookup(context.Background(), Request{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	inner := fixed("a:1", nil, nil)
	if got := WithTimeout(inner, 0); fmt.Sprintf("%p", got) != fmt.Sprintf("%p", inner) {
		t.Fatal("WithTimeout(r, 0) should be r")
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := Cache(fixed("a:1", nil, nil), time.Hour, time.Hour, 0)
	req := Request{Protocol: "imap", Account: "alice@a.test"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Lookup(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWithTimeout(b *testing.B) {
	r := WithTimeout(fixed("a:1", nil, nil), time.Second)
	req := Request{Protocol: "imap", Account: "alice@a.test"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Lookup(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// A SIGHUP purges the route caches (route/config's reload). A lookup that
// was in flight to the source when the purge ran must not put its answer,
// read before the reload, back into the purged cache: the next login after
// the reload must ask the source again.
func TestCachePurgeRacesLookup(t *testing.T) {
	var gen atomic.Int32 // the source's data: 1 before the reload, 2 after
	gen.Store(1)
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	src := RouterFunc(func(ctx context.Context, req Request) (Route, error) {
		n := calls.Add(1)
		g := gen.Load()
		if n == 1 { // the login racing the reload: read old data, then stall
			close(entered)
			<-release
		}
		addr := "old.example:143"
		if g == 2 {
			addr = "new.example:143"
		}
		return Route{Backends: []Backend{{Protocol: "imap", Addr: addr}}}, nil
	})
	c := Cache(src, time.Hour, time.Hour, 0)

	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Lookup(context.Background(), Request{Protocol: "imap", Account: "alice"})
	}()
	<-entered
	// The operator changed the source and sent SIGHUP: the data is new, and
	// the caches are purged, while the first lookup is still in flight.
	gen.Store(2)
	c.Purge()
	close(release)
	<-done

	rt, err := c.Lookup(context.Background(), Request{Protocol: "imap", Account: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Backends[0].Addr; got != "new.example:143" {
		t.Errorf("first lookup after the reload's purge: backend %s (a pre-reload answer cached for the positive TTL), want new.example:143; source asked %d times", got, calls.Load())
	}
}

// TestCacheNeverChecked: a route whose source checked the password is
// Checked when it comes from the source, never from the cache: a
// password checked once says nothing of the next login's (login=xclient
// relies on it).
func TestCacheNeverChecked(t *testing.T) {
	src := RouterFunc(func(context.Context, Request) (Route, error) {
		b, _ := ParseBackend("imap://127.0.0.1:1")
		return Route{Backends: []Backend{b}, Checked: true}, nil
	})
	c := Cache(src, time.Minute, time.Second, 10)
	req := Request{Protocol: "imap", Account: "alice@a.test", Password: "secret"}
	if rt, err := c.Lookup(context.Background(), req); err != nil || !rt.Checked {
		t.Fatalf("from the source: %+v, %v; want Checked", rt, err)
	}
	req.Password = "wrong"
	if rt, err := c.Lookup(context.Background(), req); err != nil || rt.Checked || len(rt.Backends) != 1 {
		t.Fatalf("from the cache: %+v, %v; want the route, not Checked", rt, err)
	}
}
