package gateway

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a gateway's Prometheus metrics for one protocol. A nil
// *Metrics records nothing.
type Metrics struct {
	protocol      string
	sessions      prometheus.Counter
	active        prometheus.Gauge
	logins        *prometheus.CounterVec
	loginDuration prometheus.Histogram
	failures      *prometheus.CounterVec
}

// NewMetrics makes the metrics of protocol (a Protocol's Name: "imap",
// "pop3", ...) and registers them with reg (when not nil); the protocol is
// in their names, so that the IMAP names stay as they were:
//
//	pipegate_<protocol>_sessions_total                      connections accepted
//	pipegate_<protocol>_sessions_active                     connections open, before and after login
//	pipegate_<protocol>_logins_total{backend,result}        result: ok, failed, unavailable, in_use
//	pipegate_<protocol>_login_duration_seconds              from the login command to its answer
//	pipegate_<protocol>_login_failures_total{kind}          failed logins by kind: password, no_route, denied, name, sasl
//
// backend is the backend's host:port ("" when no backend was reached, as
// for an account without route). Servers of one protocol may share them;
// a second NewMetrics of the protocol on the same reg gives Metrics that
// count in the same series (it does not panic).
func NewMetrics(reg prometheus.Registerer, protocol string) *Metrics {
	p := "pipegate_" + protocol + "_"
	up := strings.ToUpper(protocol)
	m := &Metrics{
		protocol: protocol,
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: p + "sessions_total",
			Help: up + " client connections accepted.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: p + "sessions_active",
			Help: up + " client connections open, before and after login.",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: p + "logins_total",
			Help: up + " login attempts by backend and result (ok, failed, unavailable, in_use).",
		}, []string{"backend", "result"}),
		loginDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    p + "login_duration_seconds",
			Help:    "Time from an " + up + " login command to its answer, failure delays included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: p + "login_failures_total",
			Help: "Failed " + up + " logins by kind (password, no_route, denied, name, sasl); every kind is answered on the same delay schedule.",
		}, []string{"kind"}),
	}
	if reg != nil {
		m.sessions = register(reg, m.sessions)
		m.active = register(reg, m.active)
		m.logins = register(reg, m.logins)
		m.loginDuration = register(reg, m.loginDuration)
		m.failures = register(reg, m.failures)
	}
	return m
}

// register registers c with reg; when reg already has the same collector
// (a second NewMetrics of the protocol) it returns that one, so that both
// count together. Any other clash is a programming error: it panics, as
// prometheus.MustRegister does.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("gateway: register metrics: %v", err))
}

// Protocol is the protocol the metrics are named for.
func (m *Metrics) Protocol() string { return m.protocol }

// failure counts a failed login of kind (Failures.Observe).
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
// answered observes how long a login took to its answer, its attempts
// counted already.
func (m *Metrics) answered(d time.Duration) {
	if m != nil {
		m.loginDuration.Observe(d.Seconds())
	}
}

func (m *Metrics) login(backend, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.logins.WithLabelValues(backend, result).Inc()
	if d > 0 {
		m.loginDuration.Observe(d.Seconds())
	}
}
