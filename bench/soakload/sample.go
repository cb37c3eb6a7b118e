package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pipegate/pipegate/internal/procfs"
)

// metrics is a /metrics scrape: value by series ("name{labels}" as
// written).
type metrics map[string]float64

// scrape reads addr's /metrics.
func scrape(addr string) (metrics, error) {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: %s", addr, resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds the series of metric name whose labels contain every one of
// labels (`result="ok"`).
func (m metrics) sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range m {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		all := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				all = false
				break
			}
		}
		if all {
			total += v
		}
	}
	return total
}

// sample is one look at a daemon.
type sample struct {
	at         time.Duration // since the churn started (negative: before)
	fds        int
	threads    int
	rssKiB     int64
	goroutines int
	heapKiB    int64 // go_memstats_heap_inuse_bytes
	open       int   // sessions (mail) or connections (forward) open, by its metrics
	err        string
}

// openMetric is what a daemon's metrics say is open.
func openMetric(name string, m metrics) float64 {
	if name == "forward" {
		return m.sum("pipegate_forward_connections_open")
	}
	var n float64
	for _, p := range mailProtos {
		n += m.sum("pipegate_" + p + "_sessions_active")
	}
	return n
}

// take samples d.
func take(d *daemon, at time.Duration) (sample, metrics) {
	s := sample{at: at}
	pid := d.proc.Pgid()
	var errs []string
	var err error
	if s.fds, err = procfs.OpenFDs(pid); err != nil {
		errs = append(errs, err.Error())
	}
	if s.threads, err = threads(pid); err != nil {
		errs = append(errs, err.Error())
	}
	if st, err := procfs.ReadStatus(pid); err == nil {
		s.rssKiB = st.RSSKiB
	} else {
		errs = append(errs, err.Error())
	}
	m, err := scrape(d.metrics)
	if err != nil {
		errs = append(errs, err.Error())
	} else {
		s.goroutines = int(m.sum("go_goroutines"))
		s.heapKiB = int64(m.sum("go_memstats_heap_inuse_bytes") / 1024)
		s.open = int(openMetric(d.name, m))
	}
	s.err = strings.Join(errs, "; ")
	return s, m
}

// threads reads Threads: from /proc/PID/status.
func threads(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no Threads", pid)
}

func (s sample) row(name string) string {
	r := fmt.Sprintf("  %-8s %8s %6d %7d %9.1f %9.1f %10d %6d", name, fmtAt(s.at), s.fds, s.threads,
		float64(s.rssKiB)/1024, float64(s.heapKiB)/1024, s.goroutines, s.open)
	if s.err != "" {
		r += "  (" + s.err + ")"
	}
	return r
}

func fmtAt(d time.Duration) string {
	return d.Round(time.Second).String()
}

const sampleHeader = "  daemon        at    fds threads   RSS MiB  heap MiB goroutines   open"

// summary prints start / peak / end of each figure of a daemon's samples
// (start: the last sample before the churn, end: the last one).
func summary(name string, start, end sample, all []sample) {
	peak := start
	for _, s := range all {
		peak.fds = max(peak.fds, s.fds)
		peak.threads = max(peak.threads, s.threads)
		peak.rssKiB = max(peak.rssKiB, s.rssKiB)
		peak.heapKiB = max(peak.heapKiB, s.heapKiB)
		peak.goroutines = max(peak.goroutines, s.goroutines)
		peak.open = max(peak.open, s.open)
	}
	fmt.Printf("  %-8s %-10s %8s %8s %8s\n", name, "", "start", "peak", "end")
	for _, f := range []struct {
		label           string
		start, peak, en string
	}{
		{"fds", strconv.Itoa(start.fds), strconv.Itoa(peak.fds), strconv.Itoa(end.fds)},
		{"goroutines", strconv.Itoa(start.goroutines), strconv.Itoa(peak.goroutines), strconv.Itoa(end.goroutines)},
		{"threads", strconv.Itoa(start.threads), strconv.Itoa(peak.threads), strconv.Itoa(end.threads)},
		{"RSS MiB", mib(start.rssKiB), mib(peak.rssKiB), mib(end.rssKiB)},
		{"heap MiB", mib(start.heapKiB), mib(peak.heapKiB), mib(end.heapKiB)},
		{"open", strconv.Itoa(start.open), strconv.Itoa(peak.open), strconv.Itoa(end.open)},
	} {
		fmt.Printf("  %-8s %-10s %8s %8s %8s\n", "", f.label, f.start, f.peak, f.en)
	}
}

func mib(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }
