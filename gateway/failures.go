package gateway

import (
	"context"
	"net/netip"
	"time"

	"github.com/pipegate/pipegate/limit"
)

// DefaultFailureDelay is how long after the login command a failure is
// answered at the earliest: Dovecot's auth_failure_delay.
const DefaultFailureDelay = 2 * time.Second

// Failure kinds, for the log and the metrics; every kind takes the same
// path through Failures.Fail.
const (
	FailPassword = "password" // the backend refused the credentials
	FailNoRoute  = "no_route" // no source knows the account or its domain
	FailDenied   = "denied"   // a route source refused the login
	FailName     = "name"     // the name or password broke a rule (AccountRules)
	FailSASL     = "sasl"     // a SASL message the gateway cannot use
)

// Failures answers failed logins on one schedule: every failure, whatever
// its kind, is counted once by the penalty for the client's address and
// held until at least Floor after the login command arrived (the
// penalty's own delay comes before the next attempt, in Penalty.Wait).
// A source's Auth-Wait may hold it longer, never shorter.
type Failures struct {
	// Floor: 0 means DefaultFailureDelay; negative, no floor.
	Floor   time.Duration
	Penalty *limit.Penalty // nil: no penalty

	// Observe, when set, is told of every failure and how long its answer
	// is held (metrics, tests).
	Observe func(kind string, wait time.Duration)
	// Sleep waits d or until ctx ends (false then); nil: SleepContext.
	Sleep func(ctx context.Context, d time.Duration) bool
}

// Fail records a failed login of kind from ip, started when the command
// arrived, and waits until its answer may go out; at least is a source's
// own minimum wait (0 for none). false: ctx ended while waiting.
func (f *Failures) Fail(ctx context.Context, ip netip.Addr, started time.Time, kind string, atLeast time.Duration) bool {
	f.Penalty.Fail(ctx, ip)
	return f.hold(ctx, started, kind, atLeast)
}

// FailAttempt is Fail for a login of account with password ("" for a
// failure that had none): the penalty does not count the same account and
// password failing again from ip (limit.Penalty.FailAttempt), as
// Dovecot's does not; the answer is held all the same.
func (f *Failures) FailAttempt(ctx context.Context, ip netip.Addr, account, password string, started time.Time, kind string, atLeast time.Duration) bool {
	if account == "" && password == "" {
		f.Penalty.Fail(ctx, ip)
	} else {
		f.Penalty.FailAttempt(ctx, ip, account, password)
	}
	return f.hold(ctx, started, kind, atLeast)
}

// hold waits until a failure's answer may go out.
func (f *Failures) hold(ctx context.Context, started time.Time, kind string, atLeast time.Duration) bool {
	wait := time.Until(started.Add(f.floor()))
	if atLeast > wait {
		wait = min(atLeast, time.Minute)
	}
	wait = max(wait, 0)
	if f.Observe != nil {
		f.Observe(kind, wait)
	}
	if wait == 0 {
		return ctx.Err() == nil
	}
	sleep := f.Sleep
	if sleep == nil {
		sleep = SleepContext
	}
	return sleep(ctx, wait)
}

func (f *Failures) floor() time.Duration {
	switch {
	case f.Floor < 0:
		return 0
	case f.Floor == 0:
		return DefaultFailureDelay
	}
	return f.Floor
}

// SleepContext waits d or until ctx is done; false if ctx ended first.
func SleepContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
