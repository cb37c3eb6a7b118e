package imap

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	sessions      prometheus.Counter
	active        prometheus.Gauge
	logins        *prometheus.CounterVec
	loginDuration prometheus.Histogram
	failures      *prometheus.CounterVec
}

// NewMetrics makes the metrics and registers them with reg (when not nil):
//
//	pipegate_imap_sessions_total                      connections accepted
//	pipegate_imap_sessions_active                     connections open, before and after login
//	pipegate_imap_logins_total{backend,result}        result: ok, failed, unavailable
//	pipegate_imap_login_duration_seconds              from the login command to its answer
//	pipegate_imap_login_failures_total{kind}          failed logins by kind: password, no_route, denied, name, sasl
//
// backend is the backend's host:port ("" when no backend was reached, as
// for an account without route).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pipegate_imap_sessions_total",
			Help: "IMAP client connections accepted.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pipegate_imap_sessions_active",
			Help: "IMAP client connections open, before and after login.",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pipegate_imap_logins_total",
			Help: "IMAP login attempts by backend and result (ok, failed, unavailable).",
		}, []string{"backend", "result"}),
		loginDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pipegate_imap_login_duration_seconds",
			Help:    "Time from an IMAP login command to its answer, failure delays included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pipegate_imap_login_failures_total",
			Help: "Failed IMAP logins by kind (password, no_route, denied, name, sasl); every kind is answered on the same delay schedule.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.active, m.logins, m.loginDuration, m.failures)
	}
	return m
}

// failure counts a failed login of kind (gateway.Failures.Observe).
func (m *Metrics) failure(kind string, _ time.Duration) {
	if m != nil {
		m.failures.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) sessionStarted() {
	if m != nil {
		m.sessions.Inc()
		m.active.Inc()
	}
}

func (m *Metrics) sessionEnded() {
	if m != nil {
		m.active.Dec()
	}
}

// login counts a login result; d > 0 is observed as its latency.
func (m *Metrics) login(backend, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.logins.WithLabelValues(backend, result).Inc()
	if d > 0 {
		m.loginDuration.Observe(d.Seconds())
	}
}
