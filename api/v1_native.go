package api

import (
	"fmt"
	"math"

	dto "github.com/prometheus/client_model/go"
)

// Native histograms in the JSON API use the Prometheus HTTP API's bucket
// notation: [boundaryRule, "lower", "upper", "count"], negative buckets
// first (most negative first), then the zero bucket, then positive buckets;
// empty buckets are left out. Boundary rules say which ends are inclusive.
const (
	boundsLeftOpen  = 0 // (lower, upper]
	boundsRightOpen = 1 // [lower, upper)
	boundsClosed    = 3 // [lower, upper]
)

// Exponential schemas of native histograms. Custom-bucket histograms
// (schema -53) carry their bounds in a field client_model v0.6.2 lacks, so
// their buckets cannot be placed and are left out.
const (
	schemaMin = -4
	schemaMax = 8
)

// indexedCount is the count of one populated bucket and its index.
type indexedCount struct {
	idx   int32
	count string
}

func nativeHistogramJSON(out map[string]any, h *dto.Histogram) {
	isFloat := h.GetSampleCountFloat() > 0 || h.GetZeroCountFloat() > 0
	if isFloat {
		out["count"] = fmt.Sprint(h.GetSampleCountFloat())
	} else {
		out["count"] = fmt.Sprint(h.GetSampleCount())
	}
	bound, ok := boundFunc(h.GetSchema())
	buckets := [][]any{}
	if !ok {
		out["buckets"] = buckets // a schema we cannot place: counts only
		return
	}
	neg := populated(h.GetNegativeSpan(), h.GetNegativeDelta(), h.GetNegativeCount(), isFloat)
	for i := len(neg) - 1; i >= 0; i-- {
		b := neg[i]
		buckets = append(buckets, apiBucket(boundsRightOpen, -bound(b.idx), -bound(b.idx-1), b.count))
	}
	if zc := zeroCount(h, isFloat); zc != "" {
		zt := h.GetZeroThreshold()
		buckets = append(buckets, apiBucket(boundsClosed, -zt, zt, zc))
	}
	for _, b := range populated(h.GetPositiveSpan(), h.GetPositiveDelta(), h.GetPositiveCount(), isFloat) {
		buckets = append(buckets, apiBucket(boundsLeftOpen, bound(b.idx-1), bound(b.idx), b.count))
	}
	out["buckets"] = buckets
}

func apiBucket(rule int, lower, upper float64, count string) []any {
	return []any{rule, fmt.Sprint(lower), fmt.Sprint(upper), count}
}

// zeroCount returns the zero bucket's count, or "" when it is empty.
func zeroCount(h *dto.Histogram, isFloat bool) string {
	if isFloat {
		if c := h.GetZeroCountFloat(); c != 0 {
			return fmt.Sprint(c)
		}
		return ""
	}
	if c := h.GetZeroCount(); c != 0 {
		return fmt.Sprint(c)
	}
	return ""
}

// populated walks spans (the first offset is absolute, the others are gaps
// after the previous span) and returns the non-empty buckets. Integer
// histograms carry deltas to the previous bucket, float ones absolute counts.
func populated(spans []*dto.BucketSpan, deltas []int64, counts []float64, isFloat bool) []indexedCount {
	var out []indexedCount
	var idx int32
	var cur int64
	pos := 0
	for _, s := range spans {
		idx += s.GetOffset()
		for range s.GetLength() {
			c, ok := "", false
			if isFloat && pos < len(counts) {
				c, ok = fmt.Sprint(counts[pos]), counts[pos] != 0
			} else if !isFloat && pos < len(deltas) {
				cur += deltas[pos]
				c, ok = fmt.Sprint(uint64(cur)), cur != 0
			}
			if ok {
				out = append(out, indexedCount{idx: idx, count: c})
			}
			pos++
			idx++
		}
	}
	return out
}

// boundFunc returns the function giving the upper bound of bucket idx (the
// lower bound is the upper bound of idx-1), or false for an unknown schema.
func boundFunc(schema int32) (func(idx int32) float64, bool) {
	if schema < schemaMin || schema > schemaMax {
		return nil, false
	}
	return func(idx int32) float64 { return exponentialBound(idx, schema) }, true
}

// exponentialBound is 2^(idx * 2^-schema). The bucket just below the one
// for ±Inf observations ends at math.MaxFloat64, as in Prometheus. For
// schema > 0 the value comes from math.Exp2 and may differ from Prometheus'
// precomputed table in the last digit.
func exponentialBound(idx, schema int32) float64 {
	if schema <= 0 {
		exp := int(idx) << -schema
		if exp == 1024 {
			return math.MaxFloat64
		}
		return math.Ldexp(1, exp)
	}
	n := int32(1) << schema
	frac := math.Exp2(float64(idx&(n-1))/float64(n)) / 2
	exp := int(idx>>schema) + 1
	if frac == 0.5 && exp == 1025 {
		return math.MaxFloat64
	}
	return math.Ldexp(frac, exp)
}
