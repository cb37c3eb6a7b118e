package procfs

import (
	"crypto/sha256"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	wantStat(t, "1 (systemd) S 0 1 1 0 -1 4194560 52345 1234567 120 800 150 90 4321 987 20 0 1 0 12 23456789 3000\n",
		Stat{PID: 1, Comm: "systemd", State: 'S', PPID: 0, PGRP: 1, UTime: 150, STime: 90, CUTime: 4321, CSTime: 987})
	// The command name holds spaces and both parentheses, as a process
	// may name itself (prctl PR_SET_NAME).
	wantStat(t, "4711 (a) b (c) S 2 d) R 1 4711 4711 0 -1 4194560 100 0 3 0 7 3 2 1 20 0 1 0 123 4567 89 18446744073709551615\n",
		Stat{PID: 4711, Comm: "a) b (c) S 2 d", State: 'R', PPID: 1, PGRP: 4711, UTime: 7, STime: 3, CUTime: 2, CSTime: 1})
	st := Stat{UTime: 7, STime: 3, CUTime: 2, CSTime: 1}
	if st.CPUTicks() != 10 || st.CPU() != 100*time.Millisecond {
		t.Errorf("CPUTicks, CPU = %d, %v; want 10, 100ms (children not counted)", st.CPUTicks(), st.CPU())
	}
}

// wantStat fails t unless line parses into want.
func wantStat(t *testing.T, line string, want Stat) {
	t.Helper()
	if got, err := parseStat(line); err != nil || got != want {
		t.Errorf("parseStat(%q) = %+v, %v\nwant %+v", line, got, err, want)
	}
}

// TestCPUGrows: busy work adds CPU ticks. It hashes in rounds until the
// count grows, bounded by a number of rounds far beyond a tick (10 ms).
func TestCPUGrows(t *testing.T) {
	before, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(nil)
	for round := range 100_000 { // a round hashes 1000 times: some µs
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
		after, err := ReadStat(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after.CPUTicks() > before.CPUTicks() {
			if after.CPU() <= before.CPU() {
				t.Errorf("CPU %v after %v, while the ticks grew", after.CPU(), before.CPU())
			}
			t.Logf("ticks %d -> %d after %d rounds", before.CPUTicks(), after.CPUTicks(), round+1)
			return
		}
	}
	t.Errorf("CPU ticks still %d after 10^8 hashes", before.CPUTicks())
}

func TestProcesses(t *testing.T) {
	procs, err := Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.PID == os.Getpid() {
			if p.PPID != os.Getppid() || p.PGRP != syscall.Getpgrp() {
				t.Errorf("this process: %+v; want ppid %d, pgrp %d", p, os.Getppid(), syscall.Getpgrp())
			}
			return
		}
	}
	t.Errorf("this process (%d) not among %d processes", os.Getpid(), len(procs))
}
