package configtest

import (
	"runtime"
	"strings"
	"testing"
)

// Goroutines are the goroutines not started by the runtime or the
// testing package, by id, each with its creator: those the code under
// test (or an earlier test, winding down) started. Those whose creator's
// name starts with one of ignore are left out too (a pool's health check
// that Close ends, say).
func Goroutines(ignore ...string) map[string]string {
	buf := make([]byte, 1<<16)
	for range 16 {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	skipped := append([]string{"testing.", "runtime.", "os/signal.", "internal/"}, ignore...)
	all := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, creator, ok := strings.Cut(g, "\ncreated by ")
		id, _, _ := strings.Cut(strings.TrimPrefix(head, "goroutine "), " ")
		if ok && !hasAnyPrefix(creator, skipped) {
			all[id] = creator
		}
	}
	return all
}

// CheckNoGoroutine fails t if a goroutine not in before runs now, but
// those ignored as Goroutines ignores them.
func CheckNoGoroutine(t testing.TB, before map[string]string, what string, ignore ...string) {
	t.Helper()
	for id, creator := range Goroutines(ignore...) {
		if _, ok := before[id]; !ok {
			t.Fatalf("%s started goroutine %s, created by %s", what, id, creator)
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
