package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
)

// The phases of one login-logout cycle, as the client sees them: where a
// proxy adds to a login's latency, which sets the logins per second of
// sequential logins.
const (
	phaseConnect  = iota // TCP connect
	phaseGreeting        // connected → greeting read (the TLS handshake included)
	phaseLogin           // LOGIN sent → its tagged OK read (the backend's login included)
	phaseLogout          // LOGOUT sent → its tagged OK read (one round trip through the pipe)
	phaseCount
)

var phaseNames = [phaseCount]string{"connect", "greeting", "login", "logout"}

// phaseTimes is one cycle's time in each phase.
type phaseTimes [phaseCount]time.Duration

// phaseLog keeps every completed cycle's phase times, by target.
var phaseLog = struct {
	sync.Mutex
	byTarget map[string][]phaseTimes
}{byTarget: map[string][]phaseTimes{}}

func (p phaseTimes) record(name string) {
	phaseLog.Lock()
	defer phaseLog.Unlock()
	phaseLog.byTarget[name] = append(phaseLog.byTarget[name], p)
}

// printPhases prints, for each target, the median time of each phase over
// its cycles so far, in µs.
func printPhases(targets []target) {
	phaseLog.Lock()
	defer phaseLog.Unlock()
	fmt.Printf("%-14s", "median µs")
	for _, n := range phaseNames {
		fmt.Printf(" %9s", n)
	}
	fmt.Printf(" %9s\n", "sum")
	for _, t := range targets {
		cycles := phaseLog.byTarget[t.name]
		fmt.Printf("%-14s", t.name)
		var sum float64
		for ph := range phaseCount {
			v := make([]float64, len(cycles))
			for i, c := range cycles {
				v[i] = float64(c[ph].Microseconds())
			}
			med := benchproc.SpreadOf(v).Med
			sum += med
			fmt.Printf(" %9.0f", med)
		}
		fmt.Printf(" %9.0f\n", sum)
	}
}

// resetPhases forgets every cycle recorded so far: each set-up's table
// counts its own rounds only.
func resetPhases() {
	phaseLog.Lock()
	defer phaseLog.Unlock()
	clear(phaseLog.byTarget)
}
