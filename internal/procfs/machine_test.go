package procfs

import "testing"

func TestParseMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	text := "cpu  10 20 30 400 50 6 7 8 900 1000\ncpu0 5 10 15 200 25 3 3 4 450 500\nintr 1 2\n"
	if got, err := parseMachineCPU(text); err != nil || got != 81 {
		t.Errorf("parseMachineCPU = %d, %v; want 81 (all but idle, iowait, guest)", got, err)
	}
	// An old kernel without steal and guest.
	if got, err := parseMachineCPU("cpu 1 2 3 4 5 6 7\n"); err != nil || got != 19 {
		t.Errorf("parseMachineCPU of 7 fields = %d, %v; want 19", got, err)
	}
}

func TestMachineCPU(t *testing.T) {
	busy, err := MachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if busy <= 0 {
		t.Errorf("MachineCPU = %v; want > 0 since boot", busy)
	}
}
