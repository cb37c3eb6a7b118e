package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/metrics"
	"syscall"
)

// reportMemOnSignal prints the Go runtime's memory figures to stderr on
// SIGUSR1, to see where an idle pair's bytes go.
func reportMemOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go printMem(ch)
}

func printMem(ch <-chan os.Signal) {
	names := []string{
		"/sched/goroutines:goroutines",
		"/memory/classes/heap/stacks:bytes",
		"/gc/heap/live:bytes",
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/free:bytes",
		"/memory/classes/heap/released:bytes",
		"/memory/classes/os-stacks:bytes",
		"/memory/classes/other:bytes",
		"/memory/classes/metadata/other:bytes",
		"/memory/classes/total:bytes",
	}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	for range ch {
		metrics.Read(samples)
		for _, s := range samples {
			fmt.Fprintf(os.Stderr, "mem %s %d\n", s.Name, s.Value.Uint64())
		}
	}
}
