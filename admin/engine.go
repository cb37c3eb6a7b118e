package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/pipe"
)

// EngineCollector exports the pipe engines' own counts: pipes open, on
// the event loops, and the pipes that fell back to goroutines by reason,
// so that a toolchain or kernel change shows as a number, never as a
// silent memory regression.
//
//	reg.MustRegister(admin.NewEngineCollector(func() map[string]pipe.Stats {
//		return map[string]pipe.Stats{"imap": engine.Stats()}
//	}))
//
// Stats is called at each scrape; its keys are the engine label.
type EngineCollector struct {
	stats                  func() map[string]pipe.Stats
	open, onLoops, fallbck *prometheus.Desc
}

// NewEngineCollector returns a collector of what stats returns.
func NewEngineCollector(stats func() map[string]pipe.Stats) *EngineCollector {
	return &EngineCollector{
		stats:   stats,
		open:    prometheus.NewDesc("pipegate_engine_pipes_open", "Pipes running now.", []string{"engine"}, nil),
		onLoops: prometheus.NewDesc("pipegate_engine_pipes_on_loops", "Pipes running now on the event loops (no goroutine while idle).", []string{"engine"}, nil),
		fallbck: prometheus.NewDesc("pipegate_engine_fallbacks_total", "Pipes that run on goroutines instead of the event loops, by reason.", []string{"engine", "reason"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *EngineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.onLoops
	ch <- c.fallbck
}

// Collect implements prometheus.Collector.
func (c *EngineCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.Open), name)
		ch <- prometheus.MustNewConstMetric(c.onLoops, prometheus.GaugeValue, float64(s.OnLoops), name)
		for _, f := range pipe.AllFallbacks() {
			ch <- prometheus.MustNewConstMetric(c.fallbck, prometheus.CounterValue, float64(s.Fallbacks[f]), name, f.String())
		}
	}
}
