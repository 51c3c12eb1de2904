package api

import (
	"fmt"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/histogram"
)

// Native histograms in the JSON API use the Prometheus HTTP API's bucket
// notation: [boundaryRule, "lower", "upper", "count"], negative buckets
// first (most negative first), then the zero bucket, then positive buckets;
// empty buckets are left out. Boundary rules say which ends are inclusive.
const (
	boundsLeftOpen  = 0 // (lower, upper]
	boundsRightOpen = 1 // [lower, upper)
	boundsOpen      = 2 // (lower, upper)
	boundsClosed    = 3 // [lower, upper]
)

// Exponential schemas of native histograms. Custom-bucket histograms
// (schema -53) carry their bounds in a field client_model v0.6.2 lacks, so
// their buckets cannot be placed and are left out.
const (
	schemaMin = -4
	schemaMax = 8
)

func nativeHistogramJSON(out map[string]any, h *dto.Histogram) {
	isFloat := h.GetSampleCountFloat() > 0 || h.GetZeroCountFloat() > 0
	if isFloat {
		out["count"] = fmt.Sprint(h.GetSampleCountFloat())
	} else {
		out["count"] = fmt.Sprint(h.GetSampleCount())
	}
	buckets := [][]any{}
	if s := h.GetSchema(); s < schemaMin || s > schemaMax {
		out["buckets"] = buckets // a schema we cannot place: counts only
		return
	}
	// The bounds come from Prometheus' own histogram model, the code
	// Pushgateway 1.11.5 formats them with, so they match it to the last
	// digit. Like 1.11.5, the buckets next to the zero bucket keep their
	// own bounds.
	fh := modelHistogram(h, isFloat)
	add := func(it histogram.BucketIterator[float64]) {
		for it.Next() {
			if b := it.At(); b.Count != 0 {
				buckets = append(buckets, []any{boundaryRule(b), fmt.Sprint(b.Lower), fmt.Sprint(b.Upper), countString(b.Count, isFloat)})
			}
		}
	}
	add(fh.NegativeReverseBucketIterator())
	if fh.ZeroCount != 0 {
		buckets = append(buckets, []any{boundsClosed, fmt.Sprint(-fh.ZeroThreshold), fmt.Sprint(fh.ZeroThreshold), countString(fh.ZeroCount, isFloat)})
	}
	add(fh.PositiveBucketIterator())
	out["buckets"] = buckets
}

// modelHistogram is h in Prometheus' histogram model, its counts as
// floats (exact for integer counts below 2^53).
func modelHistogram(h *dto.Histogram, isFloat bool) *histogram.FloatHistogram {
	fh := &histogram.FloatHistogram{
		Schema:          h.GetSchema(),
		ZeroThreshold:   h.GetZeroThreshold(),
		ZeroCount:       h.GetZeroCountFloat(),
		PositiveSpans:   spans(h.GetPositiveSpan()),
		NegativeSpans:   spans(h.GetNegativeSpan()),
		PositiveBuckets: counts(h.GetPositiveDelta(), h.GetPositiveCount(), isFloat),
		NegativeBuckets: counts(h.GetNegativeDelta(), h.GetNegativeCount(), isFloat),
	}
	if !isFloat {
		fh.ZeroCount = float64(h.GetZeroCount())
	}
	return fh
}

func spans(ss []*dto.BucketSpan) []histogram.Span {
	out := make([]histogram.Span, len(ss))
	for i, s := range ss {
		out[i] = histogram.Span{Offset: s.GetOffset(), Length: s.GetLength()}
	}
	return out
}

// counts returns absolute bucket counts: float histograms carry them,
// integer ones carry deltas to the previous bucket.
func counts(deltas []int64, floats []float64, isFloat bool) []float64 {
	if isFloat {
		return floats
	}
	out := make([]float64, len(deltas))
	var cur int64
	for i, d := range deltas {
		cur += d
		out[i] = float64(cur)
	}
	return out
}

// boundaryRule is the Prometheus HTTP API's code for which ends of a
// bucket are inclusive.
func boundaryRule(b histogram.Bucket[float64]) int {
	switch {
	case b.LowerInclusive && b.UpperInclusive:
		return boundsClosed
	case b.LowerInclusive:
		return boundsRightOpen
	case b.UpperInclusive:
		return boundsLeftOpen
	default:
		return boundsOpen
	}
}

func countString(c float64, isFloat bool) string {
	if isFloat {
		return fmt.Sprint(c)
	}
	return fmt.Sprint(uint64(c))
}
