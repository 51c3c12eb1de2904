package ingest

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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
	reasonMaxGroups        = "max_groups"         // the store's --store.max-groups
	reasonMaxSeries        = "max_series"         // the store's --store.max-series
	reasonStoreLimit       = "limit"              // a store.ErrLimit naming neither flag; should stay 0
	reasonOverloaded       = "overloaded"         // refused by the api's admission control
	reasonOwnerUnavailable = "owner_unavailable"  // the owner peer did not answer a forwarded push
)

// rejectReasons is every reason, pre-initialised to 0 so the set of series
// is fixed from the start and a rate() over a first rejection works.
var rejectReasons = []string{
	reasonPath, reasonBody, reasonTooLarge, reasonInconsistent, reasonTimestamp, reasonInvalid, reasonTTL,
	reasonSeriesPerPush, reasonLabelsPerSeries, reasonLabelNameLength, reasonLabelValueLength, reasonMetricNameLength,
	reasonMaxGroups, reasonMaxSeries, reasonStoreLimit, reasonOverloaded, reasonOwnerUnavailable,
}

// The store's flags that its ErrLimit messages name.
const (
	storeFlagMaxGroups = "store.max-groups"
	storeFlagMaxSeries = "store.max-series"
)

// Values of the result label of pushring_ttl_rules_reloads_total.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// metrics are the ingester's self-metrics. Their labels come from fixed
// sets (method, status code, reason, result); never from a path or a pushed
// value.
type metrics struct {
	requests   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	bodyBytes  prometheus.Histogram
	reloads    *prometheus.CounterVec
	lastReload prometheus.Gauge
	reloadOK   prometheus.Gauge

	forwarded      *prometheus.CounterVec
	forwardSeconds prometheus.Histogram
	handOffGroups  *prometheus.CounterVec
	handOffBatches *prometheus.CounterVec
	handOffPending prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_ingest_requests_total",
			Help: "Push and delete requests handled by the ingester, by method and status code.",
		}, []string{"method", "code"}),
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
		forwarded: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_forwarded_pushes_total",
			Help: "Pushes and deletes forwarded to the peer that owns their group, by result (ok: the owner applied it; refused: the owner answered with an error, counted under its reason there; unavailable: no answer, 503 here).",
		}, []string{"result"}),
		forwardSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "pushring_forward_duration_seconds",
			Help:    "Time to forward a push to its owner and get its answer, in seconds.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		handOffGroups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_handoff_groups_total",
			Help: "Groups this peer handed to their new owner, by result (sent: the owner has it, or a newer write of it, and it left this peer; kept: a write came in meanwhile, it stays until the next pass; rejected: the owner refused it, by its limits or consistency check, and it stays here; failed: the batch did not get through, it stays here).",
		}, []string{"result"}),
		handOffBatches: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_handoff_batches_total",
			Help: "Hand-off batches sent to new owners, by result (ok or failed).",
		}, []string{"result"}),
		handOffPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_handoff_pending_groups",
			Help: "Groups this peer holds but does not own, as of the last hand-off pass: they wait to be handed to their owner.",
		}),
	}
	for _, r := range []string{handOffSent, handOffKept, handOffRejected, handOffFailed} {
		m.handOffGroups.WithLabelValues(r)
	}
	for _, r := range []string{forwardOK, forwardRefused, forwardUnavailable} {
		m.forwarded.WithLabelValues(r)
	}
	m.handOffBatches.WithLabelValues(resultOK)
	m.handOffBatches.WithLabelValues(resultFailed)
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	m.reloads.WithLabelValues(resultSuccess)
	m.reloads.WithLabelValues(resultFailure)
	return m
}

// observe counts one handled request.
func (m *metrics) observe(method string, code int, reason string) {
	m.requests.WithLabelValues(methodLabel(method), strconv.Itoa(code)).Inc()
	if reason != "" {
		m.rejected.WithLabelValues(reason).Inc()
	}
}

// methodLabel maps a request method onto a bounded, lower-case set.
func methodLabel(method string) string {
	switch method {
	case http.MethodPut:
		return "put"
	case http.MethodPost:
		return "post"
	case http.MethodDelete:
		return "delete"
	default:
		return "other"
	}
}
