package store

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the store's self-metrics. A refusal is not one of them: the
// store returns its reason (RejectReason) and the caller counts it once.
type metrics struct {
	groups             prometheus.Gauge
	series             prometheus.Gauge
	sampleBytes        prometheus.Gauge
	failuresUnrecorded prometheus.Counter
	expired            prometheus.Counter
	repeated           prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		groups: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_store_groups",
			Help: "Groups stored on this peer.",
		}),
		series: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_store_series",
			Help: "Series stored on this peer, counted as Prometheus counts them (sample lines: a histogram's buckets, _sum and _count each), push-time gauges included.",
		}),
		sampleBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_store_sample_bytes",
			Help: "Bytes of sample lines stored on this peer, label names and values included (bounded by --store.max-bytes).",
		}),
		failuresUnrecorded: f.NewCounter(prometheus.CounterOpts{
			Name: "pushring_store_failure_times_unrecorded_total",
			Help: "Failure times not recorded because the group's push-time gauges would have clashed with another group (the Pushgateway would have poisoned its store) or the group would have exceeded a limit of this peer.",
		}),
		expired: f.NewCounter(prometheus.CounterOpts{
			Name: "pushring_groups_expired_total",
			Help: "Groups removed because their TTL passed since their last successful push (restored groups already past their deadline included).",
		}),
		repeated: f.NewCounter(prometheus.CounterOpts{
			Name: "pushring_store_repeated_pushes_total",
			Help: "Pushes applied as new values for the series of their group's last push, whose body they repeated but for the values (nothing parsed or checked again).",
		}),
	}
	return m
}
