// Package procfs reads what the benches and test helpers want to know of
// a Linux process from /proc: its CPU time, parent and process group
// (/proc/PID/stat), its resident memory (/proc/PID/status), its open
// files (/proc/PID/fd), and the busy time of the whole machine
// (/proc/stat). Each file is parsed here once; a reader's error names the
// file, and one for a process that has gone wraps fs.ErrNotExist.
//
//	before, err := procfs.ReadStat(pid)
//	if err != nil {
//		return err // "open /proc/4711/stat: no such file or directory"
//	}
//	work()
//	after, err := procfs.ReadStat(pid)
//	if err != nil {
//		return err
//	}
//	fmt.Printf("%v of CPU, %d ticks\n", after.CPU()-before.CPU(), after.CPUTicks()-before.CPUTicks())
//	mem, err := procfs.ReadStatus(pid) // mem.RSSKiB, mem.AnonKiB
//	...
//	fds, err := procfs.OpenFDs(pid)
//	...
//	procs, err := procfs.Processes() // every process's Stat: walk a group or a tree
//
// The package holds no state: every call reads the files afresh.
package procfs
