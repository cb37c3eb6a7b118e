package upgrade

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitReady(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	if err := newc.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := oldc.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

func TestWaitReadyFailed(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	if err := newc.Failed(ctx, "config.yaml: listen[1].addr: port 99999 out of range"); err != nil {
		t.Fatal(err)
	}
	err := oldc.WaitReady(ctx)
	var fe *FailedError
	if !errors.As(err, &fe) || fe.Reason != "config.yaml: listen[1].addr: port 99999 out of range" {
		t.Fatalf("WaitReady: %v, want the reason", err)
	}
}

func TestWaitReadyTimeout(t *testing.T) {
	oldc, _ := connPair(t)
	// The new process never answers: only the deadline can end the wait.
	ctx, cancel := context.WithTimeout(testCtx(t), time.Millisecond)
	defer cancel()
	err := oldc.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady: %v, want context.DeadlineExceeded", err)
	}
}

func TestWaitReadyPeerGone(t *testing.T) {
	oldc, newc := connPair(t)
	newc.Close()
	var fe *FailedError
	if err := oldc.WaitReady(testCtx(t)); !errors.As(err, &fe) || !strings.Contains(fe.Reason, "closed") {
		t.Fatalf("WaitReady: %v, want a FailedError", err)
	}
}

func TestWaitReadyUnexpected(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	if err := newc.Send(ctx, "hello-there", nil); err != nil {
		t.Fatal(err)
	}
	if err := oldc.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "hello-there") {
		t.Fatalf("WaitReady: %v", err)
	}
}
