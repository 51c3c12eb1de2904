package main

import (
	"math"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// TestCompatNativeHistogramBoundsJSON pushes native histograms of coarse
// and fine schemas, integer and float, with negative, zero and positive
// buckets (one next to the zero threshold, one at the end of the float
// range) to Pushgateway 1.11.5 and to pushring, and requires the same
// /api/v1/metrics from both: every bucket bound to the last digit.
func TestCompatNativeHistogramBoundsJSON(t *testing.T) {
	pgBin := requireEnvTool(t, envPushgateway1115)
	t.Parallel()
	span := func(off int32, n uint32) *dto.BucketSpan {
		return &dto.BucketSpan{Offset: proto.Int32(off), Length: proto.Uint32(n)}
	}
	intHist := func(schema int32) *dto.Metric {
		return &dto.Metric{Label: lp("schema", "i"+itoa32(schema)), Histogram: &dto.Histogram{
			Schema: proto.Int32(schema), ZeroThreshold: proto.Float64(0.001), ZeroCount: proto.Uint64(2),
			SampleCount: proto.Uint64(20), SampleSum: proto.Float64(12.5),
			PositiveSpan:  []*dto.BucketSpan{span(-3, 4), span(5, 3), span(1000, 1)},
			PositiveDelta: []int64{1, 0, 1, -1, 2, 1, -2, 1},
			NegativeSpan:  []*dto.BucketSpan{span(1, 3)},
			NegativeDelta: []int64{3, -1, 1},
		}}
	}
	floatHist := func(schema int32) *dto.Metric {
		return &dto.Metric{Label: lp("schema", "f"+itoa32(schema)), Histogram: &dto.Histogram{
			Schema: proto.Int32(schema), ZeroThreshold: proto.Float64(0.5), ZeroCountFloat: proto.Float64(1.5),
			SampleCountFloat: proto.Float64(9.5), SampleSum: proto.Float64(-3.25),
			PositiveSpan:  []*dto.BucketSpan{span(-2, 5), span(7, 2)},
			PositiveCount: []float64{0.5, 1, 0, 2.25, 1, 0.75, 1},
			NegativeSpan:  []*dto.BucketSpan{span(-1, 2)},
			NegativeCount: []float64{0.25, 1.25},
		}}
	}
	var metrics []*dto.Metric
	for _, s := range []int32{-4, -1, 0, 1, 3, 5, 8} {
		metrics = append(metrics, intHist(s), floatHist(s))
	}
	// The last finite bucket of schema 0 ends at the largest float.
	metrics = append(metrics, &dto.Metric{Label: lp("schema", "edge"), Histogram: &dto.Histogram{
		Schema: proto.Int32(0), SampleCount: proto.Uint64(2), SampleSum: proto.Float64(math.MaxFloat64),
		PositiveSpan: []*dto.BucketSpan{span(1024, 2)}, PositiveDelta: []int64{1, 0},
	}})
	fam := &dto.MetricFamily{Name: proto.String("native_bounds"), Help: proto.String("Native histograms."),
		Type: dto.MetricType_HISTOGRAM.Enum(), Metric: metrics}

	gs := []*gw{startGateway(t, kindPushgateway, pgBin, nil), startPushring(t)}
	for _, g := range gs {
		st, body := g.do(t, http.MethodPut, "/metrics/job/native", hdrs("Content-Type", ctProto), protoBody(t, fam))
		require.Equal(t, http.StatusOK, st, "%s: %s", g.kind, body)
		g.barrier(t)
	}
	pg, pr := gs[0].fetchAPI(t), gs[1].fetchAPI(t)
	require.NotEmpty(t, pg.Groups)
	require.Equal(t, pg, pr, "/api/v1/metrics: Pushgateway 1.11.5 (expected) vs pushring (actual)")
}

func itoa32(i int32) string {
	if i < 0 {
		return "m" + itoa32(-i)
	}
	return string(rune('0' + i))
}
