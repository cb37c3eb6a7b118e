package forward

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/pipe"
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

// forwardMetrics are the series of one forward, looked up once per
// configuration rather than per connection. A nil *forwardMetrics records
// nothing.
type forwardMetrics struct {
	m        *Metrics
	name     string
	open     prometheus.Gauge
	total    prometheus.Counter
	toUp     prometheus.Counter
	toClient prometheus.Counter
	duration prometheus.Observer
}

func (m *Metrics) forward(name string) *forwardMetrics {
	if m == nil {
		return nil
	}
	return &forwardMetrics{
		m:        m,
		name:     name,
		open:     m.open.WithLabelValues(name),
		total:    m.total.WithLabelValues(name),
		toUp:     m.bytes.WithLabelValues(name, "to_upstream"),
		toClient: m.bytes.WithLabelValues(name, "to_client"),
		duration: m.duration.WithLabelValues(name),
	}
}

func (f *forwardMetrics) accepted() {
	if f == nil {
		return
	}
	f.total.Inc()
	f.open.Inc()
}

// adopted counts in a pair another process handed over (it was
// accepted there).
func (f *forwardMetrics) adopted() {
	if f == nil {
		return
	}
	f.open.Inc()
}

// left counts out a pair handed over to another process, which counts
// its bytes and duration when it closes.
func (f *forwardMetrics) left() {
	if f == nil {
		return
	}
	f.open.Dec()
}

func (f *forwardMetrics) refused(reason string) {
	if f == nil {
		return
	}
	f.m.refused.WithLabelValues(f.name, reason).Inc()
	f.open.Dec()
}

func (f *forwardMetrics) closed(r pipe.Result) {
	if f == nil {
		return
	}
	f.open.Dec()
	f.toUp.Add(float64(r.BytesAToB))
	f.toClient.Add(float64(r.BytesBToA))
	f.duration.Observe(r.Duration().Seconds())
}

func (f *forwardMetrics) dialError(upstream string) {
	if f == nil {
		return
	}
	f.m.dialErrs.WithLabelValues(f.name, upstream).Inc()
}
