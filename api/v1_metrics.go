package api

import (
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/store"
)

// The JSON shapes of GET /api/v1/metrics are the Pushgateway's: every
// number is a string as fmt.Sprint formats it, a group is one flat object
// whose keys are "labels", "last_push_successful" and the family names.
// pushring adds "expires_at" (RFC 3339, UTC, nanoseconds) to a group with a
// TTL; a group that never expires has no such key, so its object is the
// Pushgateway's.

// familyJSON is one family of a group.
type familyJSON struct {
	TimeStamp time.Time        `json:"time_stamp"`
	Type      string           `json:"type"`
	Help      string           `json:"help,omitempty"`
	Metrics   []map[string]any `json:"metrics"`
}

// groupsJSON converts snapshots (already sorted by key) to the data array.
func groupsJSON(groups []store.GroupSnapshot) []map[string]any {
	out := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		out = append(out, groupJSON(g))
	}
	return out
}

// groupJSON flattens a group. As with the Pushgateway, a family named
// "labels" or "last_push_successful" takes the place of that key; so does
// one named "expires_at", since a client written against the Pushgateway
// would look for the family there.
func groupJSON(g store.GroupSnapshot) map[string]any {
	m := make(map[string]any, len(g.Families)+3)
	m["labels"] = g.Key.Map()
	m["last_push_successful"] = g.LastPushSuccessful()
	if !g.Deadline.IsZero() {
		m["expires_at"] = g.Deadline.UTC().Format(time.RFC3339Nano)
	}
	for _, f := range g.Families {
		m[f.Family.GetName()] = familyJSON{
			TimeStamp: f.Time,
			Type:      f.Family.GetType().String(),
			Help:      f.Family.GetHelp(),
			Metrics:   metricsJSON(f.Family),
		}
	}
	return m
}

func metricsJSON(mf *dto.MetricFamily) []map[string]any {
	out := make([]map[string]any, 0, len(mf.GetMetric()))
	for _, m := range mf.GetMetric() {
		out = append(out, metricJSON(m, mf.GetType()))
	}
	return out
}

func metricJSON(m *dto.Metric, typ dto.MetricType) map[string]any {
	labels := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	out := map[string]any{"labels": labels}
	switch typ {
	case dto.MetricType_SUMMARY:
		summaryJSON(out, m.GetSummary())
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		histogramJSON(out, m.GetHistogram())
	default:
		out["value"] = fmt.Sprint(scalarValue(m))
	}
	return out
}

func summaryJSON(out map[string]any, s *dto.Summary) {
	q := make(map[string]string, len(s.GetQuantile()))
	for _, e := range s.GetQuantile() {
		q[fmt.Sprint(e.GetQuantile())] = fmt.Sprint(e.GetValue())
	}
	out["quantiles"] = q
	out["count"] = fmt.Sprint(s.GetSampleCount())
	out["sum"] = fmt.Sprint(s.GetSampleSum())
}

// histogramJSON writes a classic histogram's buckets as an object keyed by
// upper bound, or a native histogram's as the Prometheus API's bucket
// arrays. Float counts win when present.
func histogramJSON(out map[string]any, h *dto.Histogram) {
	out["sum"] = fmt.Sprint(h.GetSampleSum())
	if len(h.GetPositiveSpan())+len(h.GetNegativeSpan()) > 0 {
		nativeHistogramJSON(out, h)
		return
	}
	b := make(map[string]string, len(h.GetBucket()))
	for _, e := range h.GetBucket() {
		if c := e.GetCumulativeCountFloat(); c > 0 {
			b[fmt.Sprint(e.GetUpperBound())] = fmt.Sprint(c)
		} else {
			b[fmt.Sprint(e.GetUpperBound())] = fmt.Sprint(e.GetCumulativeCount())
		}
	}
	out["buckets"] = b
	if c := h.GetSampleCountFloat(); c > 0 {
		out["count"] = fmt.Sprint(c)
	} else {
		out["count"] = fmt.Sprint(h.GetSampleCount())
	}
}

// scalarValue returns the value of whichever scalar a metric carries,
// whatever its family's type says.
func scalarValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	default:
		return 0
	}
}
