package store

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// randomComplex returns a family of random summaries or histograms with
// awkward values: NaN, ±Inf, -0, float and integer counts, huge counts,
// label values to escape, no labels, no buckets, a +Inf bucket or none.
func randomComplex(rng *rand.Rand, typ dto.MetricType) *dto.MetricFamily {
	floats := []float64{0, 1, -1, math.Copysign(0, -1), 0.5, 1e-9, 123456789, 1e21, math.NaN(), math.Inf(1), math.Inf(-1), 2.5e-300}
	f := func() float64 { return floats[rng.IntN(len(floats))] }
	values := []string{"", "a", "quote\"", "back\\slash", "new\nline", "ünï"}
	mf := &dto.MetricFamily{Name: proto.String("fam"), Type: typ.Enum()}
	for i := range 1 + rng.IntN(4) {
		m := &dto.Metric{}
		for j := range rng.IntN(3) {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(fmt.Sprintf("l%d", j)), Value: proto.String(values[(i+j+rng.IntN(6))%len(values)])})
		}
		if typ == dto.MetricType_SUMMARY {
			s := &dto.Summary{SampleCount: proto.Uint64(rng.Uint64N(1 << 60)), SampleSum: proto.Float64(f())}
			for range rng.IntN(4) {
				s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(f()), Value: proto.Float64(f())})
			}
			m.Summary = s
		} else {
			h := &dto.Histogram{SampleSum: proto.Float64(f())}
			if rng.IntN(2) == 0 {
				h.SampleCount = proto.Uint64(rng.Uint64N(1 << 62))
			} else {
				h.SampleCountFloat = proto.Float64(f())
			}
			for range rng.IntN(5) {
				b := &dto.Bucket{UpperBound: proto.Float64(f())}
				if rng.IntN(2) == 0 {
					b.CumulativeCount = proto.Uint64(rng.Uint64N(1000))
				} else {
					b.CumulativeCountFloat = proto.Float64(f())
				}
				h.Bucket = append(h.Bucket, b)
			}
			m.Histogram = h
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}

// The store's renderer of summaries and histograms writes the bytes
// expfmt writes.
func TestComplexSamplesAreExpfmts(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 5000 {
		typ := []dto.MetricType{dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM}[i%3]
		mf := randomComplex(rng, typ)
		var want bytes.Buffer
		_, err := expfmt.MetricFamilyToText(&want, mf)
		require.NoError(t, err)
		got, ok := appendComplexSamples(nil, mf.GetName(), typ, mf.Metric)
		require.True(t, ok)
		require.Equal(t, string(dropFirstLine(want.Bytes())), string(got), "%v", mf)
	}
	_, ok := appendComplexSamples(nil, "x", dto.MetricType_SUMMARY, []*dto.Metric{{TimestampMs: proto.Int64(1), Summary: &dto.Summary{}}})
	require.False(t, ok, "a timestamp is left to expfmt")
}
