package limit

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestFailAttemptRepeat: the same account and password failing again from
// one address does not raise the penalty (Dovecot's anvil does the same);
// another password, another account, or the same attempt once it has
// dropped out of the last 10, is counted.
func TestFailAttemptRepeat(t *testing.T) {
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.7")
	p := &Penalty{}
	failures := func() int64 {
		t.Helper()
		n, err := p.getStore().Failures(ctx, keyString(ip))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		account, password string
		counted           bool
		failures          int64
	}{
		{"alice@a.test", "old", true, 1},
		{"alice@a.test", "old", false, 1}, // the phone with the old password, again
		{"alice@a.test", "old", false, 1},
		{"alice@a.test", "Old", true, 2},
		{"bob@a.test", "old", true, 3},
		{"alice@a.test", "old", false, 3},
		{"alice@a.test", "old\x00", true, 4},
		{"alice@a.test\x00old", "", true, 5}, // the two fields do not run together
	}
	for i, s := range steps {
		if got := p.FailAttempt(ctx, ip, s.account, s.password); got != s.counted {
			t.Fatalf("step %d (%q, %q): counted %v, want %v", i, s.account, s.password, got, s.counted)
		}
		if n := failures(); n != s.failures {
			t.Fatalf("step %d: %d failures, want %d", i, n, s.failures)
		}
	}
	// Another address has its own attempts.
	if !p.FailAttempt(ctx, netip.MustParseAddr("192.0.2.8"), "alice@a.test", "old") {
		t.Error("the same attempt from another address was not counted")
	}
	// Ten other passwords push "old" out: it counts again.
	for i := range repeatsKept {
		p.FailAttempt(ctx, ip, "alice@a.test", fmt.Sprint("guess", i))
	}
	if !p.FailAttempt(ctx, ip, "alice@a.test", "old") {
		t.Error("an attempt older than the last 10 was not counted")
	}
	// A success forgets the address's attempts, as it resets its count.
	p.Success(ctx, ip)
	if !p.FailAttempt(ctx, ip, "alice@a.test", "old") || failures() != 1 {
		t.Errorf("after a success: failures %d, want the attempt counted once", failures())
	}
}

// TestFailAttemptForget: an attempt is remembered for Forget after the
// address's last failure, as the count is.
func TestFailAttemptForget(t *testing.T) {
	ctx := context.Background()
	ip := netip.MustParseAddr("2001:db8::1")
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	p := &Penalty{Store: NewMemoryStoreClock(0, clock), Forget: time.Minute, now: clock}
	if !p.FailAttempt(ctx, ip, "alice@a.test", "old") {
		t.Fatal("first failure not counted")
	}
	now = now.Add(59 * time.Second)
	if p.FailAttempt(ctx, ip, "alice@a.test", "old") {
		t.Fatal("a repeat within Forget was counted")
	}
	now = now.Add(59 * time.Second) // the repeat kept it for another minute
	if p.FailAttempt(ctx, netip.MustParseAddr("2001:db8::2"), "alice@a.test", "old") {
		t.Fatal("a repeat from the same /64 within Forget was counted")
	}
	now = now.Add(61 * time.Second)
	if !p.FailAttempt(ctx, ip, "alice@a.test", "old") {
		t.Fatal("a repeat after Forget was not counted")
	}
	if d := p.Delay(ctx, ip); d != DefaultPenaltyBase {
		t.Fatalf("delay %s after the count was forgotten and one failure, want %s", d, DefaultPenaltyBase)
	}
}

// TestRepeatsBounded: the in-process memory of attempts holds at most its
// bound of addresses, dropping the least recently failed.
func TestRepeatsBounded(t *testing.T) {
	r := newRepeats(3, nil)
	for i := range 5 {
		r.seen(fmt.Sprint("ip", i), "a", "p", time.Hour)
	}
	if n := r.lru.Len(); n != 3 || len(r.m) != 3 {
		t.Fatalf("%d entries (%d in the map), want 3", n, len(r.m))
	}
	if r.seen("ip0", "a", "p", time.Hour) {
		t.Error("the oldest address was not dropped")
	}
	if !r.seen("ip4", "a", "p", time.Hour) {
		t.Error("the newest address was dropped")
	}
}

// TestFailAttemptNilPenalty: a nil *Penalty counts nothing, as with Fail.
func TestFailAttemptNilPenalty(t *testing.T) {
	var p *Penalty
	if p.FailAttempt(context.Background(), netip.MustParseAddr("192.0.2.7"), "a", "b") {
		t.Error("a nil Penalty counted a failure")
	}
}
