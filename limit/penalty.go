package limit

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// Defaults of Penalty, modelled on Dovecot's auth penalty
// (src/auth/auth-penalty.[ch]: 2 s doubled per failure, at most 15 s):
// 2 s after the first failure, then 4, 8, 15, 15 … s. Dovecot forgets an
// address 29 s after its last failure (and decays the count meanwhile);
// pipegate keeps the count for 5 minutes after the last failure, so that a
// guesser gains nothing from pausing half a minute, and a success resets it
// as in Dovecot.
const (
	DefaultPenaltyBase   = 2 * time.Second
	DefaultPenaltyMax    = 15 * time.Second
	DefaultPenaltyForget = 5 * time.Minute
	DefaultStoreTimeout  = time.Second
)

// Penalty delays logins from client addresses that failed before: after n
// failures the delay is min(Base·2^(n-1), Max). A success resets the
// address. The zero value works (in-process store, default durations); a
// nil *Penalty never delays.
//
// Store errors (Redis down or hanging) never block a login: each store call
// is bounded by StoreTimeout, the delay is then 0, and OnError, if set, is
// told.
type Penalty struct {
	Store  PenaltyStore  // nil: an in-process NewMemoryStore(0)
	Base   time.Duration // 0: DefaultPenaltyBase
	Max    time.Duration // 0: DefaultPenaltyMax
	Forget time.Duration // 0: DefaultPenaltyForget
	// StoreTimeout bounds each store call (a Redis that hangs must not hold
	// logins); 0: DefaultStoreTimeout.
	StoreTimeout time.Duration
	// OnError, if not nil, is called with each store error (to log or count).
	OnError func(error)

	once    sync.Once
	store   PenaltyStore
	repeats *repeats
	now     func() time.Time // nil: time.Now (tests set it)
}

func (p *Penalty) getStore() PenaltyStore {
	p.once.Do(func() {
		p.store = p.Store
		if p.store == nil {
			p.store = NewMemoryStore(0)
		}
		p.repeats = newRepeats(0, p.now)
	})
	return p.store
}

// getRepeats is the memory of failed attempts, made with the store.
func (p *Penalty) getRepeats() *repeats {
	p.getStore()
	return p.repeats
}

// storeCtx bounds a store call by StoreTimeout.
func (p *Penalty) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := p.StoreTimeout
	if d <= 0 {
		d = DefaultStoreTimeout
	}
	return context.WithTimeout(ctx, d)
}

func (p *Penalty) fail(err error) {
	if err != nil && p.OnError != nil {
		p.OnError(err)
	}
}

// Delay returns how long a login from ip should wait: 0 without failures.
func (p *Penalty) Delay(ctx context.Context, ip netip.Addr) time.Duration {
	if p == nil {
		return 0
	}
	ctx, cancel := p.storeCtx(ctx)
	defer cancel()
	n, err := p.getStore().Failures(ctx, keyString(ip))
	if err != nil {
		p.fail(err)
		return 0
	}
	return p.DelayFor(n)
}

// DelayFor returns the delay after n failures.
func (p *Penalty) DelayFor(n int64) time.Duration {
	if p == nil || n <= 0 {
		return 0
	}
	base, limit := p.Base, p.Max
	if base <= 0 {
		base = DefaultPenaltyBase
	}
	if limit <= 0 {
		limit = DefaultPenaltyMax
	}
	d := base
	for i := int64(1); i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Wait sleeps Delay(ctx, ip), or returns ctx.Err() if ctx ends first.
func (p *Penalty) Wait(ctx context.Context, ip netip.Addr) error {
	d := p.Delay(ctx, ip)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fail counts a failed login from ip.
func (p *Penalty) Fail(ctx context.Context, ip netip.Addr) {
	if p == nil {
		return
	}
	ctx, cancel := p.storeCtx(ctx)
	defer cancel()
	_, err := p.getStore().Fail(ctx, keyString(ip), p.forget())
	p.fail(err)
}

// FailAttempt counts a failed login of account with password from ip, as
// Fail does, unless the same account and password failed from ip within
// Forget (among its last 10 failed attempts): as in Dovecot's auth
// penalty, the same wrong password again is most likely a device with an
// old saved password, and does not raise the delay for everyone behind
// that address. It reports whether the failure was counted.
//
// The attempts are remembered in this process only, as a hash with a key
// made for it (never the password, never in the Store): with a shared
// Store, a repeat that reaches another instance is counted there.
func (p *Penalty) FailAttempt(ctx context.Context, ip netip.Addr, account, password string) bool {
	if p == nil {
		return false
	}
	if p.getRepeats().seen(keyString(ip), account, password, p.forget()) {
		return false
	}
	p.Fail(ctx, ip)
	return true
}

func (p *Penalty) forget() time.Duration {
	if p.Forget <= 0 {
		return DefaultPenaltyForget
	}
	return p.Forget
}

// Success forgets ip's failures.
func (p *Penalty) Success(ctx context.Context, ip netip.Addr) {
	if p == nil {
		return
	}
	ctx, cancel := p.storeCtx(ctx)
	defer cancel()
	p.fail(p.getStore().Reset(ctx, keyString(ip)))
	p.getRepeats().forget(keyString(ip))
}
