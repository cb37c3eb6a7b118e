package realserver

import "github.com/pipegate/pipegate/internal/procfs"

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	procs, err := procfs.Processes()
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 10000 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
