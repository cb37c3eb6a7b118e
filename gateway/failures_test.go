package gateway_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/limit"
)

// TestFailuresSchedule: every kind is held to the same floor from the
// command, a source's longer wait wins, and each failure counts once.
func TestFailuresSchedule(t *testing.T) {
	store := limit.NewMemoryStore(0)
	var held []time.Duration
	f := &gateway.Failures{
		Floor:   2 * time.Second,
		Penalty: &limit.Penalty{Store: store},
		Sleep: func(_ context.Context, d time.Duration) bool {
			held = append(held, d)
			return true
		},
	}
	ip := netip.MustParseAddr("192.0.2.1")
	started := time.Now()
	for _, kind := range []string{gateway.FailPassword, gateway.FailNoRoute, gateway.FailDenied, gateway.FailName, gateway.FailSASL} {
		if !f.Fail(context.Background(), ip, started, kind, 0) {
			t.Fatal("Fail: false")
		}
	}
	f.Fail(context.Background(), ip, started, gateway.FailDenied, 10*time.Second)
	if len(held) != 6 {
		t.Fatalf("held %v", held)
	}
	for i, d := range held[:5] {
		if d <= 0 || d > 2*time.Second || d < held[0]-time.Second {
			t.Errorf("failure %d held %v", i, d)
		}
	}
	if held[5] != 10*time.Second {
		t.Errorf("a source's Auth-Wait of 10s held %v", held[5])
	}
	if n, _ := store.Failures(context.Background(), "ip:192.0.2.1/32"); n != 6 {
		t.Errorf("penalty count %d, want 6", n)
	}

	// No floor: nothing held, still counted.
	held = nil
	f.Floor = -1
	f.Fail(context.Background(), ip, time.Now(), gateway.FailName, 0)
	if len(held) != 0 {
		t.Errorf("held %v without a floor", held)
	}
	if n, _ := store.Failures(context.Background(), "ip:192.0.2.1/32"); n != 7 {
		t.Errorf("penalty count %d, want 7", n)
	}
}

// TestRelayAnswer: a client's answer to a relayed challenge goes to the
// backend as it is when it is base64 (an empty one included); "*" and
// anything else (including "=", which stands for an empty response only
// in a command) cancel, the backend getting "*".
func TestRelayAnswer(t *testing.T) {
	for _, tc := range []struct {
		in, send string
		cancel   bool
		detail   string
	}{
		{"", "", false, ""},
		{"dG9rZW4=", "dG9rZW4=", false, ""},
		{"*", "*", true, ""},
		{"=", "*", true, gateway.DetailBase64},
		{"not base64!", "*", true, gateway.DetailBase64},
		{"dG9r\r\nZW4=", "*", true, gateway.DetailBase64},
	} {
		send, e := gateway.RelayAnswer(tc.in)
		if send != tc.send || (e != nil) != tc.cancel || e != nil && (e.Code != gateway.CodeCancelled || e.Detail != tc.detail) {
			t.Errorf("RelayAnswer(%q) = %q, %+v; want %q, cancel %v %q", tc.in, send, e, tc.send, tc.cancel, tc.detail)
		}
	}
}
