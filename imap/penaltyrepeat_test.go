package imap_test

import (
	"context"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/limit"
)

// TestPenaltyRepeatNotCounted: the same account and password refused
// again from one address (a phone with an old saved password) does not
// raise the address's penalty, on the same connection or a new one, as
// with Dovecot's; another password does.
func TestPenaltyRepeatNotCounted(t *testing.T) {
	_, _, r := twoBackends(t)
	store := limit.NewMemoryStore(0)
	pen := &limit.Penalty{Store: store, Base: 1, Max: 1} // a nanosecond: counted, hardly waited
	srv := &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, Penalty: pen}}
	p := startProxy(t, srv)
	count := func() int64 {
		t.Helper()
		n, err := store.Failures(context.Background(), "ip:127.0.0.1/32")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	c := dialClient(t, p.addr)
	for i, want := range []int64{1, 1} {
		if err := c.Login("alice@a.test", "old").Wait(); err == nil {
			t.Fatal("wrong password accepted")
		}
		if n := count(); n != want {
			t.Fatalf("after the same wrong password %d times: %d failures counted, want %d", i+1, n, want)
		}
	}
	if err := c.Login("alice@a.test", "older").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	if n := count(); n != 2 {
		t.Fatalf("after another wrong password: %d failures counted, want 2", n)
	}
	c2 := dialClient(t, p.addr)
	if err := c2.Login("alice@a.test", "old").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := c2.Login("bob@b.test", "old").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	if n := count(); n != 3 {
		t.Fatalf("after the first password again on a new connection and another account: %d failures counted, want 3", n)
	}
}
