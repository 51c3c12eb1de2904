package store_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pushring/pushring/store"
)

// nativeFamilies are a histogram with native and classic parts side by
// side, and a counter and a summary with created timestamps.
func nativeFamilies() []*dto.MetricFamily {
	created := timestamppb.New(time.Unix(1700000000, 123000000))
	return []*dto.MetricFamily{
		fam("nh", dto.MetricType_HISTOGRAM, proto.String("h"), &dto.Metric{Histogram: &dto.Histogram{
			SampleCount: proto.Uint64(6), SampleSum: proto.Float64(7.5),
			Bucket: []*dto.Bucket{
				{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(2)},
				{UpperBound: proto.Float64(4), CumulativeCount: proto.Uint64(5)},
			},
			Schema: proto.Int32(3), ZeroThreshold: proto.Float64(1e-128), ZeroCount: proto.Uint64(1),
			PositiveSpan:     []*dto.BucketSpan{{Offset: proto.Int32(-2), Length: proto.Uint32(3)}},
			PositiveDelta:    []int64{1, 1, -1},
			NegativeSpan:     []*dto.BucketSpan{{Offset: proto.Int32(1), Length: proto.Uint32(1)}},
			NegativeDelta:    []int64{1},
			CreatedTimestamp: created,
		}}),
		fam("ct_total", dto.MetricType_COUNTER, nil, &dto.Metric{Counter: &dto.Counter{Value: proto.Float64(4), CreatedTimestamp: created}}),
		fam("cs", dto.MetricType_SUMMARY, nil, &dto.Metric{Summary: &dto.Summary{
			SampleCount: proto.Uint64(2), SampleSum: proto.Float64(3), CreatedTimestamp: created,
			Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(1)}},
		}}),
	}
}

// protoScrape returns the families of a protobuf scrape by name.
func protoScrape(t *testing.T, s *store.Store) map[string]*dto.MetricFamily {
	t.Helper()
	out := map[string]*dto.MetricFamily{}
	r := bytes.NewReader(scrape(t, s, store.FormatProtoDelim))
	for r.Len() > 0 {
		mf := &dto.MetricFamily{}
		require.NoError(t, protodelim.UnmarshalFrom(r, mf))
		out[mf.GetName()] = mf
	}
	return out
}

// requireValuesKept requires every pushed metric's value fields (native
// buckets, classic buckets, created timestamps) in got, unchanged.
func requireValuesKept(t *testing.T, got map[string]*dto.MetricFamily) {
	t.Helper()
	for _, want := range nativeFamilies() {
		g := got[want.GetName()]
		require.NotNil(t, g, want.GetName())
		require.Len(t, g.Metric, 1)
		w, m := want.Metric[0], g.Metric[0]
		require.True(t, proto.Equal(w.Histogram, m.Histogram), "%s histogram:\n got %v\nwant %v", want.GetName(), m.Histogram, w.Histogram)
		require.True(t, proto.Equal(w.Counter, m.Counter), "%s counter", want.GetName())
		require.True(t, proto.Equal(w.Summary, m.Summary), "%s summary", want.GetName())
	}
}

// TestNativeHistogramsAndCreatedTimestampsKept: a histogram's native and
// classic parts and every created timestamp survive a push, the protobuf
// scrape, persistence and a restore.
func TestNativeHistogramsAndCreatedTimestampsKept(t *testing.T) {
	s, _ := newStore(t, nil)
	apply(t, s, famPush(key("job", "n"), true, time.Unix(1700000100, 0), nativeFamilies()...))
	requireValuesKept(t, protoScrape(t, s))

	path := filepath.Join(t.TempDir(), "pushring.data")
	require.NoError(t, store.WriteFile(path, s.Snapshot()))
	groups, err := store.ReadFile(path)
	require.NoError(t, err)
	restored, _ := newStore(t, nil)
	require.NoError(t, restored.Restore(groups))
	requireValuesKept(t, protoScrape(t, restored))
}
