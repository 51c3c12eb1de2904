package api

import (
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/store"
)

// familyView is one family as the pages show it.
type familyView struct {
	Name, Type, Help string
	LastPush         string
	Series           []seriesView
	More             int    // series left out of a preview
	GroupURL         string // where the rest is
}

// seriesView is one series: its labels and its value, or for histograms
// and summaries the parts of its value.
type seriesView struct {
	Labels []store.Label
	Value  string
	Detail []nameValue // count, sum, native histogram fields
	// Buckets are a classic histogram's cumulative buckets or a summary's
	// quantiles.
	Buckets                                     []nameValue
	BucketsCaption, BucketHead, BucketValueHead string
}

type nameValue struct{ Name, Value string }

// familyViews are the families of g without the gateway's two time gauges
// (the page shows them as the last push and failure). With limit > 0 at
// most limit series are shown in all, and the rest are counted in More.
func familyViews(g store.GroupSnapshot, groupURL string, limit int) []familyView {
	now := time.Now()
	left := limit
	var out []familyView
	for _, fs := range g.Families {
		mf := fs.Family
		if n := mf.GetName(); n == store.PushTimeName || n == store.PushFailureTimeName {
			continue
		}
		fv := familyView{Name: mf.GetName(), Type: strings.ToLower(mf.GetType().String()), Help: mf.GetHelp(),
			LastPush: "never", GroupURL: groupURL}
		if !fs.Time.IsZero() {
			fv.LastPush = whenText(fs.Time, now)
		}
		for i, m := range mf.GetMetric() {
			if limit > 0 && left == 0 {
				fv.More = len(mf.GetMetric()) - i
				break
			}
			left--
			fv.Series = append(fv.Series, seriesOf(m))
		}
		out = append(out, fv)
	}
	return out
}

// seriesOf renders one metric.
func seriesOf(m *dto.Metric) seriesView {
	sv := seriesView{Labels: make([]store.Label, 0, len(m.GetLabel()))}
	for _, lp := range m.GetLabel() {
		sv.Labels = append(sv.Labels, store.Label{Name: lp.GetName(), Value: lp.GetValue()})
	}
	switch {
	case m.GetCounter() != nil:
		sv.Value = num(m.GetCounter().GetValue())
	case m.GetGauge() != nil:
		sv.Value = num(m.GetGauge().GetValue())
	case m.GetUntyped() != nil:
		sv.Value = num(m.GetUntyped().GetValue())
	case m.GetSummary() != nil:
		s := m.GetSummary()
		sv.Detail = []nameValue{{"count", strconv.FormatUint(s.GetSampleCount(), 10)}, {"sum", num(s.GetSampleSum())}}
		for _, q := range s.GetQuantile() {
			sv.Buckets = append(sv.Buckets, nameValue{num(q.GetQuantile()), num(q.GetValue())})
		}
		sv.BucketsCaption, sv.BucketHead, sv.BucketValueHead = "quantiles", "quantile", "value"
	case m.GetHistogram() != nil:
		histogramView(&sv, m.GetHistogram())
	}
	return sv
}

// histogramView fills sv with a histogram's count, sum and classic
// buckets, and a summary of its native buckets.
func histogramView(sv *seriesView, h *dto.Histogram) {
	count := strconv.FormatUint(h.GetSampleCount(), 10)
	if h.SampleCountFloat != nil {
		count = num(h.GetSampleCountFloat())
	}
	sv.Detail = []nameValue{{"count", count}, {"sum", num(h.GetSampleSum())}}
	for _, b := range h.GetBucket() {
		v := strconv.FormatUint(b.GetCumulativeCount(), 10)
		if b.CumulativeCountFloat != nil {
			v = num(b.GetCumulativeCountFloat())
		}
		sv.Buckets = append(sv.Buckets, nameValue{"le " + num(b.GetUpperBound()), v})
	}
	sv.BucketsCaption, sv.BucketHead, sv.BucketValueHead = "buckets", "upper bound", "cumulative count"
	if native := len(h.GetPositiveSpan()) + len(h.GetNegativeSpan()); native > 0 || h.Schema != nil {
		sv.Detail = append(sv.Detail,
			nameValue{"native schema", strconv.Itoa(int(h.GetSchema()))},
			nameValue{"zero threshold", num(h.GetZeroThreshold())},
			nameValue{"zero count", strconv.FormatUint(h.GetZeroCount(), 10)},
			nameValue{"positive buckets", strconv.Itoa(spanBuckets(h.GetPositiveSpan()))},
			nameValue{"negative buckets", strconv.Itoa(spanBuckets(h.GetNegativeSpan()))},
		)
	}
}

// spanBuckets counts the buckets a native histogram's spans cover.
func spanBuckets(spans []*dto.BucketSpan) int {
	n := 0
	for _, s := range spans {
		n += int(s.GetLength())
	}
	return n
}

// num formats a sample value as the text exposition does: +Inf, -Inf,
// NaN, and the shortest decimal otherwise.
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
