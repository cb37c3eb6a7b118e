package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// outcome is how one operation of the churn ended.
type outcome int

const (
	outOK         outcome = iota // as expected
	outRestart                   // failed while Dovecot was down or coming back: expected
	outUnexpected                // failed otherwise: a finding
)

// scenarioStat counts one scenario's operations.
type scenarioStat struct {
	n, ok, restart, unexpected int
	errs                       map[string]int // unexpected errors, by text (bounded)
}

// maxErrTexts bounds the distinct error texts kept per scenario.
const maxErrTexts = 8

// tally is what the churn did, for the checks at the end. Safe for
// concurrent use.
type tally struct {
	mu        sync.Mutex
	scenarios map[string]*scenarioStat
	// What the daemons should have counted.
	mailDials   map[string]int // by protocol: connections made
	loginOK     map[string]int // by protocol: logins answered OK
	badRejected map[string]int // by protocol: wrong passwords refused
	// Logins whose client left before the answer: the daemon may or may
	// not have counted them, by protocol.
	goodGone, badGone map[string]int
	fwdDials          map[string]int // by forward: connections made
	fwdBytes          map[string]int // by forward: bytes sent and echoed back whole
	// The client addresses each daemon should log once per connection.
	mailClients map[string]int
	fwdClients  map[string]int
	// Over-long lines: what each protocol answered.
	longLine map[string]int

	// The restarts (Dovecot's, the echo server's): failures between a
	// down and its up (plus restartGrace) are expected.
	windows []window
}

// window is one restart: down, and up (zero while down).
type window struct{ down, up time.Time }

func newTally() *tally {
	return &tally{
		scenarios: map[string]*scenarioStat{},
		mailDials: map[string]int{}, loginOK: map[string]int{}, badRejected: map[string]int{},
		goodGone: map[string]int{}, badGone: map[string]int{},
		fwdDials: map[string]int{}, fwdBytes: map[string]int{}, mailClients: map[string]int{}, fwdClients: map[string]int{},
		longLine: map[string]int{},
	}
}

// restartGrace is how long after a restarted server listens again a
// failure is still put down to the restart (pipegate's back-off,
// Dovecot's login processes starting).
const restartGrace = 10 * time.Second

// setDown opens a restart window and returns its index for setUp.
func (t *tally) setDown(at time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.windows = append(t.windows, window{down: at})
	return len(t.windows) - 1
}

func (t *tally) setUp(i int, at time.Time) { t.mu.Lock(); t.windows[i].up = at; t.mu.Unlock() }

// disturbed reports whether an operation from start to now overlapped a
// restart.
func (t *tally) disturbed(start time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for _, w := range t.windows {
		end := w.up.Add(restartGrace)
		if w.up.IsZero() {
			end = now
		}
		if !now.Before(w.down) && !start.After(end) {
			return true
		}
	}
	return false
}

// record counts one operation of scenario that started at start; err nil
// is a success.
func (t *tally) record(scenario string, start time.Time, err error) {
	o := outOK
	if err != nil {
		o = outUnexpected
		if t.disturbed(start) {
			o = outRestart
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.scenarios[scenario]
	if s == nil {
		s = &scenarioStat{errs: map[string]int{}}
		t.scenarios[scenario] = s
	}
	s.n++
	switch o {
	case outOK:
		s.ok++
	case outRestart:
		s.restart++
	case outUnexpected:
		s.unexpected++
		text := shorten(err.Error())
		if _, ok := s.errs[text]; ok || len(s.errs) < maxErrTexts {
			s.errs[text]++
		}
	}
}

// shorten replaces the runs of four digits or more (ports, sizes) by
// "#", so that the same error is counted once, and cuts long texts.
func shorten(s string) string {
	var b strings.Builder
	run := 0
	flush := func(i int) {
		if run >= 4 {
			b.WriteByte('#')
		} else {
			b.WriteString(s[i-run : i])
		}
		run = 0
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			continue
		}
		flush(i)
		b.WriteByte(s[i])
	}
	flush(len(s))
	out := b.String()
	if len(out) > 200 {
		out = out[:200] + "..."
	}
	return out
}

func (t *tally) inc(m map[string]int, key string) { t.add(m, key, 1) }

func (t *tally) add(m map[string]int, key string, n int) {
	t.mu.Lock()
	m[key] += n
	t.mu.Unlock()
}

// snapshot copies a counter map under the lock.
func (t *tally) snapshot(m map[string]int) map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(m)
}

// print writes the scenario table and returns the findings (unexpected
// failures).
func (t *tally) print() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Printf("\n== churn: operations by scenario ==\n")
	fmt.Printf("  %-34s %8s %8s %10s %10s\n", "scenario", "ran", "ok", "restart", "unexpected")
	var findings []string
	for _, name := range slices.Sorted(maps.Keys(t.scenarios)) {
		s := t.scenarios[name]
		fmt.Printf("  %-34s %8d %8d %10d %10d\n", name, s.n, s.ok, s.restart, s.unexpected)
		for _, text := range slices.Sorted(maps.Keys(s.errs)) {
			fmt.Printf("      %5d x %s\n", s.errs[text], text)
		}
		if s.unexpected > 0 {
			findings = append(findings, fmt.Sprintf("churn: %s: %d of %d failed unexpectedly", name, s.unexpected, s.n))
		}
	}
	if len(t.longLine) > 0 {
		fmt.Printf("\n== over-long lines and huge literals: what each protocol answered ==\n")
		for _, k := range slices.Sorted(maps.Keys(t.longLine)) {
			fmt.Printf("  %5d x %s\n", t.longLine[k], k)
		}
	}
	return findings
}
