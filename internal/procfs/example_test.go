package procfs_test

import (
	"crypto/sha256"
	"fmt"
	"os"

	"github.com/pipegate/pipegate/internal/procfs"
)

// The CPU time some work took, and the memory and open files of a
// process.
func Example() {
	pid := os.Getpid() // or a server's
	before, err := procfs.ReadStat(pid)
	if err != nil {
		fmt.Println(err) // names the file
		return
	}
	sum := sha256.Sum256(nil)
	for range 100_000 {
		sum = sha256.Sum256(sum[:])
	}
	after, err := procfs.ReadStat(pid)
	if err != nil {
		fmt.Println(err)
		return
	}
	mem, err := procfs.ReadStatus(pid)
	if err != nil {
		fmt.Println(err)
		return
	}
	fds, err := procfs.OpenFDs(pid)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%v of CPU; %d KiB resident, %d anonymous; %d open files\n",
		after.CPU()-before.CPU(), mem.RSSKiB, mem.AnonKiB, fds)
}

// A process group's members, as a bench sums their CPU time.
func ExampleProcesses() {
	procs, err := procfs.Processes()
	if err != nil {
		fmt.Println(err)
		return
	}
	pgid := os.Getpid() // a server started with Setpgid leads its group
	var ticks int64
	for _, p := range procs {
		if p.PGRP == pgid {
			ticks += p.CPUTicks()
		}
	}
	fmt.Println(procfs.Ticks(ticks))
}
