package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

func requireCORS(t *testing.T, h http.Header) {
	t.Helper()
	for _, kv := range [][2]string{
		{"Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, Origin"},
		{"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"},
		{"Access-Control-Allow-Origin", "*"},
		{"Access-Control-Expose-Headers", "Date"},
		{"Cache-Control", "no-cache, no-store, must-revalidate"},
	} {
		require.Equal(t, kv[1], h.Get(kv[0]), kv[0])
	}
}

func TestV1Status(t *testing.T) {
	ta := newTestAPI(t, Config{
		Flags:     map[string]string{"web.listen-address": ":9091", "persistence.interval": "5m0s", "web.enable-lifecycle": "false"},
		BuildInfo: map[string]string{"version": "1.2.3", "revision": "abc", "branch": "main", "buildUser": "u@h", "buildDate": "20260101", "goVersion": "go1.26"},
		StartTime: time.Date(2026, 11, 22, 1, 26, 6, 671015337, time.UTC),
	})
	w := ta.do(http.MethodGet, "/api/v1/status", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	requireCORS(t, w.Header())
	golden(t, "v1_status.json", w.Body.Bytes())
}

func TestV1MetricsEmpty(t *testing.T) {
	ta := newTestAPI(t, Config{})
	w := ta.do(http.MethodGet, "/api/v1/metrics", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, `{"status":"success","data":[]}`, w.Body.String())
	requireCORS(t, w.Header())
}

func TestV1Metrics(t *testing.T) {
	ta := newTestAPI(t, Config{})
	ta.st.groups = []store.GroupSnapshot{
		group(map[string]string{"job": "batch", "instance": "i"}, 1.7953107956769595e+09, 0,
			counterFamily(),
			gaugeFamily("temperature", "Degrees <C> & more.", 0.27, "instance", "i", "job", "batch", "room", "a"),
			untypedFamily(),
			summaryFamily(),
			classicHistogramFamily(),
		),
		group(map[string]string{"job": "failed", "x": "/var/tmp"}, 0, 1.7e9, nativeHistogramFamily(), floatNativeHistogramFamily()),
	}
	// The first group has a TTL; its deadline is shown in UTC whatever the
	// zone of the time the store hands out.
	ta.st.groups[0].Deadline = time.Date(2026, 1, 2, 4, 4, 5, 600000001, time.FixedZone("CET", 3600))
	w := ta.do(http.MethodGet, "/api/v1/metrics", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	requireCORS(t, w.Header())
	golden(t, "v1_metrics.json", w.Body.Bytes())
}

// expires_at is there only for a group with a TTL, so a group without one
// has exactly the Pushgateway's keys.
func TestV1MetricsExpiresAt(t *testing.T) {
	ta := newTestAPI(t, Config{})
	withTTL := group(map[string]string{"job": "a"}, 2, 0)
	withTTL.Deadline = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	ta.st.groups = []store.GroupSnapshot{withTTL, group(map[string]string{"job": "b"}, 2, 0)}

	w := ta.do(http.MethodGet, "/api/v1/metrics", nil)
	require.Equal(t, http.StatusOK, w.Code)
	var resp struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Len(t, resp.Data, 2)
	require.Equal(t, `"2026-03-04T05:06:07.00000089Z"`, string(resp.Data[0]["expires_at"]))
	require.NotContains(t, resp.Data[1], "expires_at")
	require.ElementsMatch(t, []string{"labels", "last_push_successful", "push_time_seconds", "push_failure_time_seconds"}, keys(resp.Data[1]))

	// A family of that name wins, as "labels" does.
	withTTL.Families = append(withTTL.Families, store.FamilySnapshot{Family: gaugeFamily("expires_at", "", 1, "instance", "", "job", "a"), Time: testTime})
	ta.st.groups = []store.GroupSnapshot{withTTL}
	w = ta.do(http.MethodGet, "/api/v1/metrics", nil)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Contains(t, string(resp.Data[0]["expires_at"]), `"type":"GAUGE"`)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A family named like a group key takes its place, as in the Pushgateway.
func TestV1MetricsFamilyNamedLabels(t *testing.T) {
	ta := newTestAPI(t, Config{})
	ta.st.groups = []store.GroupSnapshot{group(map[string]string{"job": "j"}, 2, 1,
		gaugeFamily("labels", "", 1, "instance", "", "job", "j"))}
	w := ta.do(http.MethodGet, "/api/v1/metrics", nil)
	var resp struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Len(t, resp.Data, 1)
	require.Contains(t, string(resp.Data[0]["labels"]), `"type":"GAUGE"`)
	require.Equal(t, "true", string(resp.Data[0]["last_push_successful"]))
}

func counterFamily() *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String("jobs_total"),
		Help: proto.String("Jobs run."),
		Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{
			{Label: labelPairs("instance", "i", "job", "batch"), Counter: &dto.Counter{Value: proto.Float64(1e6)}},
			{Label: labelPairs("instance", "i", "job", "batch", "kind", "x"), Counter: &dto.Counter{Value: proto.Float64(1.2345678901234567e+19)}},
		},
	}
}

func untypedFamily() *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String("odd_values"),
		Type: dto.MetricType_UNTYPED.Enum(),
		Metric: []*dto.Metric{
			{Label: labelPairs("instance", "i", "job", "batch", "v", "nan"), Untyped: &dto.Untyped{Value: proto.Float64(math.NaN())}},
			{Label: labelPairs("instance", "i", "job", "batch", "v", "inf"), Untyped: &dto.Untyped{Value: proto.Float64(math.Inf(1))}},
			{Label: labelPairs("instance", "i", "job", "batch", "v", "small"), Untyped: &dto.Untyped{Value: proto.Float64(1e-7)}},
		},
	}
}

func summaryFamily() *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String("latency_seconds"),
		Help: proto.String("Latency."),
		Type: dto.MetricType_SUMMARY.Enum(),
		Metric: []*dto.Metric{{
			Label: labelPairs("instance", "i", "job", "batch"),
			Summary: &dto.Summary{
				SampleCount: proto.Uint64(2),
				SampleSum:   proto.Float64(3),
				Quantile: []*dto.Quantile{
					{Quantile: proto.Float64(0.5), Value: proto.Float64(1)},
					{Quantile: proto.Float64(0.99), Value: proto.Float64(2.5)},
				},
			},
		}},
	}
}

func classicHistogramFamily() *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String("size_bytes"),
		Type: dto.MetricType_HISTOGRAM.Enum(),
		Metric: []*dto.Metric{{
			Label: labelPairs("instance", "i", "job", "batch"),
			Histogram: &dto.Histogram{
				SampleCount: proto.Uint64(2),
				SampleSum:   proto.Float64(3),
				Bucket: []*dto.Bucket{
					{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(1)},
					{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(2)},
				},
			},
		}},
	}
}

// nativeHistogramFamily has two negative buckets, a zero bucket and
// positive buckets in two spans (with an empty bucket inside the first).
func nativeHistogramFamily() *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String("native_seconds"),
		Help: proto.String("A native histogram."),
		Type: dto.MetricType_HISTOGRAM.Enum(),
		Metric: []*dto.Metric{{
			Label: labelPairs("instance", "", "job", "failed", "x", "/var/tmp"),
			Histogram: &dto.Histogram{
				SampleCount:   proto.Uint64(11),
				SampleSum:     proto.Float64(4.5),
				Schema:        proto.Int32(0),
				ZeroThreshold: proto.Float64(1e-128),
				ZeroCount:     proto.Uint64(1),
				NegativeSpan:  []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(2)}},
				NegativeDelta: []int64{1, 1},
				PositiveSpan: []*dto.BucketSpan{
					{Offset: proto.Int32(-1), Length: proto.Uint32(3)},
					{Offset: proto.Int32(2), Length: proto.Uint32(1)},
				},
				PositiveDelta: []int64{2, -2, 1, 1},
			},
		}},
	}
}

func floatNativeHistogramFamily() *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String("native_float"),
		Type: dto.MetricType_GAUGE_HISTOGRAM.Enum(),
		Metric: []*dto.Metric{{
			Label: labelPairs("instance", "", "job", "failed", "x", "/var/tmp"),
			Histogram: &dto.Histogram{
				SampleCountFloat: proto.Float64(3.5),
				SampleSum:        proto.Float64(7),
				Schema:           proto.Int32(3),
				ZeroThreshold:    proto.Float64(0.001),
				ZeroCountFloat:   proto.Float64(0),
				PositiveSpan:     []*dto.BucketSpan{{Offset: proto.Int32(1), Length: proto.Uint32(2)}},
				PositiveCount:    []float64{1.5, 2},
			},
		}},
	}
}

// TestNativeHistogramBounds checks the bucket bounds of the JSON API, which
// come from Prometheus' histogram model as in Pushgateway 1.11.5: powers of
// two for schema 0, 2^(idx/2^schema) for finer schemas, the last finite
// bucket ending at math.MaxFloat64, and the buckets next to the zero bucket
// keeping their own bounds.
func TestNativeHistogramBounds(t *testing.T) {
	bucket := func(schema, idx int32, zt float64) []any {
		h := &dto.Histogram{
			Schema: proto.Int32(schema), ZeroThreshold: proto.Float64(zt), SampleCount: proto.Uint64(1),
			PositiveSpan:  []*dto.BucketSpan{{Offset: proto.Int32(idx), Length: proto.Uint32(1)}},
			PositiveDelta: []int64{1},
		}
		out := map[string]any{}
		nativeHistogramJSON(out, h)
		bs := out["buckets"].([][]any)
		require.Len(t, bs, 1)
		return bs[0]
	}
	require.Equal(t, []any{boundsLeftOpen, "1", "2", "1"}, bucket(0, 1, 0))
	require.Equal(t, []any{boundsLeftOpen, "4", "16", "1"}, bucket(-1, 2, 0))
	require.Equal(t, []any{boundsLeftOpen, "0.5", "1", "1"}, bucket(0, 0, 0.75), "not clamped to the zero threshold, as in Pushgateway 1.11.5")
	b := bucket(3, 4, 0)
	upper, err := strconv.ParseFloat(b[2].(string), 64)
	require.NoError(t, err)
	require.InEpsilon(t, math.Sqrt2, upper, 1e-15)
	require.Equal(t, fmt.Sprint(math.MaxFloat64), bucket(0, 1025, 0)[1], "the ±Inf bucket starts at the largest float")
}

func TestNativeHistogramUnknownSchema(t *testing.T) {
	h := nativeHistogramFamily().Metric[0].Histogram
	h.Schema = proto.Int32(9)
	out := map[string]any{}
	histogramJSON(out, h)
	require.Equal(t, [][]any{}, out["buckets"])
	require.Equal(t, "11", out["count"])
}
