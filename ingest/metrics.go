package ingest

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons a push is rejected: the only values of the reason label.
const (
	reasonPath         = "path"
	reasonBody         = "body"
	reasonTooLarge     = "too_large"
	reasonInconsistent = "inconsistent"
)

// metrics are the ingester's self-metrics. Their labels come from fixed
// sets (method, status code, reason); never from a path or a pushed value.
type metrics struct {
	requests  *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	bodyBytes prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_ingest_requests_total",
			Help: "Push and delete requests handled by the ingester, by method and status code.",
		}, []string{"method", "code"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_ingest_rejected_total",
			Help: "Pushes and deletes rejected by the ingester, by reason (path, body, too_large, inconsistent).",
		}, []string{"reason"}),
		bodyBytes: f.NewHistogram(prometheus.HistogramOpts{
			Name: "pushring_ingest_body_bytes",
			Help: "Size of push bodies after decompression, in bytes.",
			// 256 B to 16 MiB (the default limit) in steps of 4.
			Buckets: prometheus.ExponentialBuckets(256, 4, 9),
		}),
	}
	for _, r := range []string{reasonPath, reasonBody, reasonTooLarge, reasonInconsistent} {
		m.rejected.WithLabelValues(r)
	}
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
