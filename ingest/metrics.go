package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/pushring/pushring/store"
)

// Reasons a push is rejected: the only values of the reason label of
// pushring_pushes_rejected_total.
const (
	reasonPath             = "path"               // malformed or unrouted grouping path
	reasonBody             = "body"               // undecodable body
	reasonTooLarge         = "too_large"          // --push.max-body-bytes
	reasonInconsistent     = "inconsistent"       // the store's consistency check: conflicts with stored groups
	reasonTimestamp        = "timestamp"          // a pushed sample carries a timestamp
	reasonInvalid          = "invalid"            // the push is broken on its own (e.g. a series twice)
	reasonTTL              = "ttl"                // malformed Pushring-TTL header
	reasonSeriesPerPush    = "series_per_push"    // --push.max-series
	reasonLabelsPerSeries  = "labels_per_series"  // --push.max-labels-per-series
	reasonLabelNameLength  = "label_name_length"  // --push.max-label-name-length
	reasonLabelValueLength = "label_value_length" // --push.max-label-value-length
	reasonMetricNameLength = "metric_name_length" // --push.max-metric-name-length
	reasonMaxGroups        = store.LimitMaxGroups // the store's --store.max-groups
	reasonMaxSeries        = store.LimitMaxSeries // the store's --store.max-series
	reasonMaxBytes         = store.LimitMaxBytes  // the store's --store.max-bytes
	reasonStoreLimit       = "limit"              // a store.ErrLimit of no known limit; should stay 0
	reasonOverloaded       = "overloaded"         // refused by the api's admission control
	reasonOwnerUnavailable = "owner_unavailable"  // the owner peer did not answer a forwarded push
)

// Reasons the api counts through CountRefused: a push refused while its
// body was read, before it reached Handle.
const (
	ReasonMemoryBudget = "memory_budget" // the api's --push.memory-budget-bytes
	ReasonBodyTimeout  = "body_timeout"  // --push.body-timeout or --push.min-body-rate
	ReasonBody         = reasonBody      // the connection failed while the body was read
)

// rejectReasons is every reason, pre-initialised to 0 so the set of series
// is fixed from the start and a rate() over a first rejection works.
var rejectReasons = []string{
	reasonPath, reasonBody, reasonTooLarge, reasonInconsistent, reasonTimestamp, reasonInvalid, reasonTTL,
	reasonSeriesPerPush, reasonLabelsPerSeries, reasonLabelNameLength, reasonLabelValueLength, reasonMetricNameLength,
	reasonMaxGroups, reasonMaxSeries, reasonMaxBytes, reasonStoreLimit, reasonOverloaded, reasonOwnerUnavailable,
	ReasonMemoryBudget, ReasonBodyTimeout,
}

// Values of the result label of pushring_ttl_rules_reloads_total.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// metrics are the ingester's self-metrics. Their labels come from fixed
// sets (reason, result); never from a path or a pushed value.
type metrics struct {
	rejected   *prometheus.CounterVec
	bodyBytes  prometheus.Histogram
	reloads    *prometheus.CounterVec
	lastReload prometheus.Gauge
	reloadOK   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_pushes_rejected_total",
			Help: "Requests on the push route (PUT, POST, DELETE) rejected before they changed anything, by reason.",
		}, []string{"reason"}),
		bodyBytes: f.NewHistogram(prometheus.HistogramOpts{
			Name: "pushring_ingest_body_bytes",
			Help: "Size of push bodies after decompression, in bytes.",
			// 256 B to 16 MiB (the default limit) in steps of 4.
			Buckets: prometheus.ExponentialBuckets(256, 4, 9),
		}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_ttl_rules_reloads_total",
			Help: "Reloads of the TTL rules file (SIGHUP, POST /-/reload), by result.",
		}, []string{"result"}),
		lastReload: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_ttl_rules_last_reload_success_timestamp_seconds",
			Help: "Unix time the TTL rules file was last loaded successfully, at start-up or by a reload.",
		}),
		reloadOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_rules_last_reload_successful",
			Help: "Whether the last load of the TTL rules file, at start-up or by a reload, succeeded (1) or failed and left the previous rules in force (0).",
		}),
	}
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	m.reloads.WithLabelValues(resultSuccess)
	m.reloads.WithLabelValues(resultFailure)
	return m
}
