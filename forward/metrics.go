package forward

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"pipegate/pipe"
)

// Metrics are the Prometheus metrics of every forward in a process,
// labelled by forward name. A nil *Metrics records nothing.
type Metrics struct {
	open     *prometheus.GaugeVec
	total    *prometheus.CounterVec
	refused  *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	dialErrs *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the forward metrics with reg:
//
//	pipegate_forward_connections_open{forward}
//	pipegate_forward_connections_total{forward}              accepted
//	pipegate_forward_connections_refused_total{forward,reason} closed before piping
//	pipegate_forward_bytes_total{forward,direction}          to_upstream, to_client
//	pipegate_forward_dial_errors_total{forward,upstream}
//	pipegate_forward_connection_duration_seconds{forward}    piped connections
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pipegate_forward_connections_open",
			Help: "Client connections open (being set up or piped).",
		}, []string{"forward"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pipegate_forward_connections_total",
			Help: "Client connections accepted.",
		}, []string{"forward"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pipegate_forward_connections_refused_total",
			Help: "Client connections closed before piping, by reason (limit, proxy-header, tls-handshake, client-hello, no-route, dial, shutdown).",
		}, []string{"forward", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pipegate_forward_bytes_total",
			Help: "Bytes piped, counted when a connection closes, by direction (to_upstream, to_client).",
		}, []string{"forward", "direction"}),
		dialErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pipegate_forward_dial_errors_total",
			Help: "Failed attempts to connect to an upstream (dial, PROXY header or TLS handshake).",
		}, []string{"forward", "upstream"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pipegate_forward_connection_duration_seconds",
			Help:    "Lifetime of piped connections.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12), // 1ms .. ~70min
		}, []string{"forward"}),
	}
	for _, c := range []prometheus.Collector{m.open, m.total, m.refused, m.bytes, m.dialErrs, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("forward metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) accepted(forward string) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(forward).Inc()
	m.open.WithLabelValues(forward).Inc()
}

func (m *Metrics) refusedConn(forward, reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(forward, reason).Inc()
	m.open.WithLabelValues(forward).Dec()
}

func (m *Metrics) closed(forward string, r pipe.Result) {
	if m == nil {
		return
	}
	m.open.WithLabelValues(forward).Dec()
	m.bytes.WithLabelValues(forward, "to_upstream").Add(float64(r.BytesAToB))
	m.bytes.WithLabelValues(forward, "to_client").Add(float64(r.BytesBToA))
	m.duration.WithLabelValues(forward).Observe(r.Duration().Seconds())
}

func (m *Metrics) dialError(forward, upstream string) {
	if m == nil {
		return
	}
	m.dialErrs.WithLabelValues(forward, upstream).Inc()
}
