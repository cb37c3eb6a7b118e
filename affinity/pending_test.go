package affinity

import (
	"context"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
)

// TestLoginInProgressHolds: a login between Assign and SessionStart holds
// the user on its member as a session does. When the member is marked
// down meanwhile, another instance's login of the user goes to the same
// member, never to a second one, and the first login's session starts;
// once no login or session holds the user, it is reassigned.
func TestLoginInProgressHolds(t *testing.T) {
	realserver.Need(t, redisErr)
	a, b := twoInstances(t, nil)
	ctx := context.Background()
	m, la := assign(t, a, "u") // a's backend login runs
	if err := b.SetHealth(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	mb, lb, err := b.Assign(ctx, "u")
	if err != nil {
		t.Fatalf("second login while the first runs: %v", err)
	}
	if mb != m {
		t.Fatalf("second login while the first runs on %s went to %s: two members at once", m, mb)
	}
	as, err := a.Lookup(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if as.Logins != 2 || as.Member != m {
		t.Fatalf("lookup during two logins: %+v, want member %s and 2 logins", as, m)
	}
	if err := a.SessionStart(ctx, la); err != nil {
		t.Fatalf("first login's session: %v", err)
	}
	b.SessionEnd(ctx, lb) // b's login failed on the sick member
	if m2, l2 := assign(t, b, "u"); m2 != m {
		t.Fatalf("user with a live session split to %s", m2)
	} else {
		b.SessionEnd(ctx, l2)
	}
	a.SessionEnd(ctx, la)
	as, err = a.Lookup(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if as.Logins != 0 || len(as.Sessions) != 0 {
		t.Fatalf("lookup after every login and session ended: %+v", as)
	}
	m3, l3 := assign(t, b, "u")
	defer b.SessionEnd(ctx, l3)
	if m3 == m {
		t.Fatalf("idle user kept on %s, which is down", m)
	}
}

// TestAbandonedLoginExpires: the hold of a login whose instance never
// ended it (the process died) lapses after Config.Lease.
func TestAbandonedLoginExpires(t *testing.T) {
	realserver.Need(t, redisErr)
	a, b := twoInstances(t, func(c *Config) { c.Lease = 300 * time.Millisecond })
	ctx := context.Background()
	m, _ := assign(t, a, "u") // never ended
	if err := b.SetHealth(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	if mb, lb, err := b.Assign(ctx, "u"); err != nil || mb != m {
		t.Fatalf("login while another runs on %s: %q, %v", m, mb, err)
	} else {
		b.SessionEnd(ctx, lb)
	}
	eventually(t, "the abandoned login's hold lapses", func() bool {
		mb, lb, err := b.Assign(ctx, "u")
		if err != nil {
			t.Fatalf("assign: %v", err)
		}
		b.SessionEnd(ctx, lb)
		return mb != m
	})
}
