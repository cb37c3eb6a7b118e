package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// roundResult is what one round measured.
type roundResult struct {
	serves, handedOver, takenOver time.Duration // from SIGUSR2 to each log line
	sent, stayed, adopted         int
	baseMax, baseP99, baseP50     time.Duration // sampler round trips before SIGUSR2
	upMax, upP99, upP50           time.Duration // in flight from SIGUSR2 to taken over + tail
	baseN, upN                    int
	checkMax, checkP99            time.Duration // one NOOP per session after the upgrade
	checked, failed               int
	empty, handed, fresh0, fresh  memory        // P1 empty; P2 after the hand-over; P3 empty; P3 with N fresh
	oldExit                       time.Duration // from SIGUSR2 until the old process exited
}

func (b *bench) round(ctx context.Context, r int) (res roundResult, err error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "upgradebench: round %d: "+format+"\n", append([]any{r}, args...)...)
	}
	logPath := filepath.Join(b.dir, fmt.Sprintf("pipegate-%d.log", r))
	p1, err := b.start(ctx, logPath)
	if err != nil {
		return res, err
	}
	newPID := 0
	defer func() {
		if err != nil {
			p1.stop(b.timeout)
			if newPID > 0 {
				stopPID(newPID, b.timeout)
			}
		}
	}()
	time.Sleep(b.settle) // let the process settle before reading its memory: a bench, not a test
	if res.empty, err = readMemory(p1.cmd.Process.Pid); err != nil {
		return res, err
	}
	t0 := time.Now()
	ss, err := b.openAll(ctx, b.samplers)
	if err != nil {
		return res, err
	}
	defer closeSessions(ss)
	logf("%d sessions open on pid %d in %.1fs", len(ss), p1.cmd.Process.Pid, time.Since(t0).Seconds())

	// Samplers: a quiet baseline, then SIGUSR2, until taken over + tail.
	sps := make([]*sampler, b.samplers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range sps {
		sps[i] = &sampler{}
		wg.Add(1)
		go runSampler(ss[i], sps[i], b.interval, b.timeout, stop, &wg)
	}
	time.Sleep(b.quiet) // the baseline window
	usr2 := time.Now()
	if err := p1.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		close(stop)
		wg.Wait()
		return res, fmt.Errorf("SIGUSR2 to pid %d: %w", p1.cmd.Process.Pid, err)
	}
	started, err := b.waitLog(ctx, logPath, "upgrade: new binary started", 1)
	if err == nil {
		newPID = started.int("pid")
	}
	var serves, handed, taken logLine
	if err == nil {
		serves, err = b.waitLog(ctx, logPath, "upgrade: new process serves", 1)
	}
	if err == nil {
		taken, err = b.waitLog(ctx, logPath, "mail: upgrade: sessions taken over", 1)
	}
	if err == nil {
		handed, err = b.waitLog(ctx, logPath, "mail: upgrade: sessions handed over", 1)
	}
	if err == nil {
		time.Sleep(b.tail) // sampling after the hand-over
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return res, err
	}
	res.serves, res.handedOver, res.takenOver = serves.at.Sub(usr2), handed.at.Sub(usr2), taken.at.Sub(usr2)
	res.sent, res.stayed, res.adopted = handed.int("sent"), handed.int("stayed"), taken.int("adopted")
	upEnd := taken.at.Add(b.tail)
	var base, up []time.Duration
	for i, sp := range sps {
		if sp.err != nil {
			return res, fmt.Errorf("sampler session %d: %w", i, sp.err)
		}
		for _, s := range sp.samples {
			switch {
			case !s.end.After(usr2) && s.start.After(usr2.Add(-b.quiet)):
				base = append(base, s.end.Sub(s.start))
			case s.end.After(usr2) && s.start.Before(upEnd):
				up = append(up, s.end.Sub(s.start))
			}
		}
	}
	res.baseN, res.upN = len(base), len(up)
	res.baseP50, res.baseP99, res.baseMax = stats(base)
	res.upP50, res.upP99, res.upMax = stats(up)
	logf("pid %d -> %d: sent %d, adopted %d, %.0f ms from SIGUSR2 to taken over", p1.cmd.Process.Pid, newPID, res.sent, res.adopted, ms(res.takenOver))

	if err := p1.waitExited(ctx, b.timeout); err != nil {
		return res, fmt.Errorf("old process: %w", err)
	}
	res.oldExit = time.Since(usr2) // an upper bound: seen when reaped
	time.Sleep(b.settle)           // let the new process settle before reading its memory
	if res.handed, err = readMemory(newPID); err != nil {
		return res, err
	}
	rtts, failed, cerr := b.checkAll(ss)
	res.checked, res.failed = len(ss), failed
	_, res.checkP99, res.checkMax = stats(rtts)
	if cerr != nil {
		logf("after the upgrade: %v", cerr)
	}
	closeSessions(ss)
	if err := stopPID(newPID, b.timeout); err != nil {
		logf("%v", err)
	}

	// The same N sessions opened fresh on a freshly started process.
	p3, err := b.start(ctx, filepath.Join(b.dir, fmt.Sprintf("pipegate-%d-fresh.log", r)))
	if err != nil {
		return res, err
	}
	defer p3.stop(b.timeout)
	time.Sleep(b.settle)
	if res.fresh0, err = readMemory(p3.cmd.Process.Pid); err != nil {
		return res, err
	}
	fresh, err := b.openAll(ctx, b.samplers)
	if err != nil {
		return res, err
	}
	defer closeSessions(fresh)
	time.Sleep(b.settle)
	if res.fresh, err = readMemory(p3.cmd.Process.Pid); err != nil {
		return res, err
	}
	return res, nil
}

// stats returns the median, the 99th percentile and the maximum.
func stats(ds []time.Duration) (p50, p99, max time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.5), at(0.99), s[len(s)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
