package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

// printTable prints one column per round and the median.
func printTable(w io.Writer, b *bench, rs []roundResult) {
	fmt.Fprintf(w, "# %s; N=%d sessions (TLS 1.3 from the client, on the event loops; plain IMAP to the backend), %d samplers (NOOP every %v), %d cpus, %s\n",
		time.Now().UTC().Format(time.RFC3339), b.n, b.samplers, b.interval, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(w, "# times from SIGUSR2 to the log line (log times, ms); stall = NOOP round trips in flight from SIGUSR2 to taken over + %v, baseline = the %v before SIGUSR2\n", b.tail, b.quiet)
	fmt.Fprintf(w, "# memory: growth over the same process kind's empty RSS, per session; handed = P2 after the upgrade (P1's empty RSS as base), fresh = P3 with N opened fresh\n")
	head := fmt.Sprintf("%-34s", "figure")
	for i := range rs {
		head += fmt.Sprintf(" %10s", fmt.Sprintf("round %d", i+1))
	}
	if len(rs) > 1 {
		head += fmt.Sprintf(" %10s", "median")
	}
	fmt.Fprintln(w, head)
	row := func(name, format string, f func(r roundResult) float64) {
		line := fmt.Sprintf("%-34s", name)
		var vs []float64
		for _, r := range rs {
			v := f(r)
			vs = append(vs, v)
			line += fmt.Sprintf(" %10s", fmt.Sprintf(format, v))
		}
		if len(rs) > 1 {
			line += fmt.Sprintf(" %10s", fmt.Sprintf(format, median(vs)))
		}
		fmt.Fprintln(w, line)
	}
	kib := func(a, b memory, n int) float64 { return float64(b.rssKiB-a.rssKiB) / float64(n) }
	anon := func(a, b memory, n int) float64 { return float64(b.anonKiB-a.anonKiB) / float64(n) }
	row("sent (old process)", "%.0f", func(r roundResult) float64 { return float64(r.sent) })
	row("stayed (old process)", "%.0f", func(r roundResult) float64 { return float64(r.stayed) })
	row("adopted (new process)", "%.0f", func(r roundResult) float64 { return float64(r.adopted) })
	row("new process serves, ms", "%.0f", func(r roundResult) float64 { return ms(r.serves) })
	row("sessions handed over, ms", "%.0f", func(r roundResult) float64 { return ms(r.handedOver) })
	row("sessions taken over, ms", "%.0f", func(r roundResult) float64 { return ms(r.takenOver) })
	row("sessions/s (serves..taken over)", "%.0f", func(r roundResult) float64 {
		return float64(r.adopted) / (r.takenOver - r.serves).Seconds()
	})
	row("sessions/s (SIGUSR2..taken over)", "%.0f", func(r roundResult) float64 { return float64(r.adopted) / r.takenOver.Seconds() })
	row("old process gone, ms (<=)", "%.0f", func(r roundResult) float64 { return ms(r.oldExit) })
	row("NOOP baseline p50, ms", "%.2f", func(r roundResult) float64 { return ms(r.baseP50) })
	row("NOOP baseline p99, ms", "%.2f", func(r roundResult) float64 { return ms(r.baseP99) })
	row("NOOP baseline max, ms", "%.2f", func(r roundResult) float64 { return ms(r.baseMax) })
	row("NOOP upgrade p50, ms", "%.2f", func(r roundResult) float64 { return ms(r.upP50) })
	row("NOOP upgrade p99, ms", "%.2f", func(r roundResult) float64 { return ms(r.upP99) })
	row("NOOP upgrade max (stall), ms", "%.2f", func(r roundResult) float64 { return ms(r.upMax) })
	row("stall max / baseline max", "%.1f", func(r roundResult) float64 { return ratio(r.upMax, r.baseMax) })
	row("stall p99 / baseline p99", "%.1f", func(r roundResult) float64 { return ratio(r.upP99, r.baseP99) })
	row("round trips baseline / upgrade", "%.0f", func(r roundResult) float64 { return float64(r.baseN) })
	row("  (upgrade window)", "%.0f", func(r roundResult) float64 { return float64(r.upN) })
	row("after: sessions checked", "%.0f", func(r roundResult) float64 { return float64(r.checked) })
	row("after: sessions failed", "%.0f", func(r roundResult) float64 { return float64(r.failed) })
	row("after: NOOP p99, ms", "%.2f", func(r roundResult) float64 { return ms(r.checkP99) })
	row("after: NOOP max, ms", "%.2f", func(r roundResult) float64 { return ms(r.checkMax) })
	row("empty RSS P1 / P3, MiB", "%.1f", func(r roundResult) float64 { return float64(r.empty.rssKiB) / 1024 })
	row("  (P3)", "%.1f", func(r roundResult) float64 { return float64(r.fresh0.rssKiB) / 1024 })
	row("RSS handed P2 / fresh P3, MiB", "%.1f", func(r roundResult) float64 { return float64(r.handed.rssKiB) / 1024 })
	row("  (fresh P3)", "%.1f", func(r roundResult) float64 { return float64(r.fresh.rssKiB) / 1024 })
	row("KiB RSS/session handed", "%.2f", func(r roundResult) float64 { return kib(r.empty, r.handed, r.adopted) })
	row("KiB RSS/session fresh", "%.2f", func(r roundResult) float64 { return kib(r.fresh0, r.fresh, b.n) })
	row("KiB RssAnon/session handed", "%.2f", func(r roundResult) float64 { return anon(r.empty, r.handed, r.adopted) })
	row("KiB RssAnon/session fresh", "%.2f", func(r roundResult) float64 { return anon(r.fresh0, r.fresh, b.n) })
	row("RSS/session handed / fresh", "%.2f", func(r roundResult) float64 {
		return kib(r.empty, r.handed, r.adopted) / kib(r.fresh0, r.fresh, b.n)
	})
	row("fds/session handed", "%.2f", func(r roundResult) float64 { return float64(r.handed.fds-r.empty.fds) / float64(r.adopted) })
	row("fds/session fresh", "%.2f", func(r roundResult) float64 { return float64(r.fresh.fds-r.fresh0.fds) / float64(b.n) })
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
