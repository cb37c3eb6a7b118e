package gatewaytest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/internal/procfs"
)

// NoFDLeak runs each of kinds (one kind of session each: a login that
// pipes, a failed one, a client that vanishes…) rounds times, all at
// once as subtests, then checks that the process holds the descriptors it
// held before, once active (the gateway's count of sessions, see Gauge)
// is 0. Start the servers before calling it: their listeners count as
// held before.
//
//	gatewaytest.NoFDLeak(t, 4, kinds, func() float64 {
//		return gatewaytest.Gauge(t, reg, "pipegate_pop3_sessions_active")
//	})
func NoFDLeak(t *testing.T, rounds int, kinds []func(*testing.T), active func() float64) {
	t.Helper()
	base := openFDs(t)
	var wg sync.WaitGroup
	for round := range rounds {
		for i, k := range kinds {
			wg.Add(1)
			go runKind(t, fmt.Sprintf("round%d/kind%d", round, i), k, &wg)
		}
	}
	wg.Wait()
	waitFDs(t, base, active)
}

// runKind is the goroutine of one session of NoFDLeak.
func runKind(t *testing.T, name string, k func(*testing.T), wg *sync.WaitGroup) {
	defer wg.Done()
	t.Run(name, k)
}

// Gauge reads the value of a gauge without labels from reg.
func Gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// openFDs is this process's open descriptors and what each is.
func openFDs(t testing.TB) map[int]string {
	t.Helper()
	fds, err := procfs.FDTargets(os.Getpid())
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return fds
}

// maxPooledPipeFDs: package pipe keeps up to 16 empty kernel pipes (two
// descriptors each) for splice, process-wide, for reuse; its own tests
// empty that pool before counting (pipe/internal/sock.DrainPipes, out of
// reach from here), these allow for it.
const maxPooledPipeFDs = 2 * 16

// waitFDs polls, within a bound, until the gateway counts no session
// (active) and no descriptor is open that was not open at base, but for
// pipe's pooled pipes: the sessions' last closes (the backend's side of a
// pipe, say) run on other goroutines after the client saw its connection
// end.
func waitFDs(t testing.TB, base map[int]string, active func() float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var extra []string
		pipes := 0
		for fd, l := range openFDs(t) {
			switch {
			case base[fd] == l:
			case strings.HasPrefix(l, "pipe:") && pipes < maxPooledPipeFDs:
				pipes++
			default:
				extra = append(extra, strconv.Itoa(fd)+"->"+l)
			}
		}
		a := active()
		if a == 0 && len(extra) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v sessions active; descriptors open that were not before: %s", a, strings.Join(extra, " "))
		}
		<-time.After(5 * time.Millisecond) // a bounded poll, not a synchronisation
	}
}
