package ingest

import (
	"io"
	"math"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func testFamilies() []*dto.MetricFamily {
	lp := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)} }
	return []*dto.MetricFamily{
		{Name: proto.String("g"), Help: proto.String("A gauge."), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{lp("a", "1"), lp("b", "")}, Gauge: &dto.Gauge{Value: proto.Float64(0)}},
			{Label: []*dto.LabelPair{lp("a", "2"), lp("b", "x")}, Gauge: &dto.Gauge{Value: proto.Float64(math.Inf(-1))}, TimestampMs: proto.Int64(-5)},
		}},
		{Name: proto.String("c_total"), Type: dto.MetricType_COUNTER.Enum(), Unit: proto.String("seconds"), Metric: []*dto.Metric{
			{Counter: &dto.Counter{Value: proto.Float64(3)}},
		}},
		{Name: proto.String("u"), Type: dto.MetricType_UNTYPED.Enum(), Metric: []*dto.Metric{{Untyped: &dto.Untyped{}}}},
		{Name: proto.String("empty")},
		// Not simple: the generic decoder.
		{Name: proto.String("c2_total"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{
			{Counter: &dto.Counter{Value: proto.Float64(1), CreatedTimestamp: nil, Exemplar: &dto.Exemplar{Value: proto.Float64(1), Label: []*dto.LabelPair{lp("id", "x")}}}},
		}},
		{Name: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{
			{Histogram: &dto.Histogram{SampleCount: proto.Uint64(2), SampleSum: proto.Float64(3), Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(1)}}}},
		}},
		// Fast: what client_golang sends for counters and classic histograms.
		{Name: proto.String("c3_total"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{lp("a", "1")}, Counter: &dto.Counter{Value: proto.Float64(7), CreatedTimestamp: &timestamppb.Timestamp{Seconds: 1_700_000_000, Nanos: 5}}},
		}},
		{Name: proto.String("h2"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{
			{Histogram: &dto.Histogram{SampleCountFloat: proto.Float64(2.5), SampleSum: proto.Float64(-1), CreatedTimestamp: &timestamppb.Timestamp{Seconds: 3},
				Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCountFloat: proto.Float64(1.5)}, {UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(3)}}}},
			{Label: []*dto.LabelPair{lp("x", "y")}, Histogram: &dto.Histogram{}},
		}},
		// Not simple: a native histogram, a bucket exemplar.
		{Name: proto.String("nh"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{
			{Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), Schema: proto.Int32(3), ZeroThreshold: proto.Float64(1e-9), PositiveSpan: []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(1)}}, PositiveDelta: []int64{1}}},
		}},
		{Name: proto.String("he"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{
			{Histogram: &dto.Histogram{Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(1), Exemplar: &dto.Exemplar{Value: proto.Float64(0.5)}}}}},
		}},
		{Name: proto.String("s"), Type: dto.MetricType_SUMMARY.Enum(), Metric: []*dto.Metric{
			{Summary: &dto.Summary{SampleCount: proto.Uint64(2), Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(1)}}}},
		}},
	}
}

func TestDecodeFamilyIsProtoUnmarshal(t *testing.T) {
	simple := 0
	for _, mf := range testFamilies() {
		b, err := proto.Marshal(mf)
		require.NoError(t, err)
		got, err := DecodeFamily(b)
		require.NoError(t, err)
		require.True(t, proto.Equal(mf, got), "%s:\n%v\n%v", mf.GetName(), mf, got)
		if _, ok := decodeSimpleFamily(b); ok {
			simple++
		}
	}
	require.Equal(t, 7, simple, "gauges, counters, untyped, classic histograms and empty families take the fast path")
}

// FuzzDecodeFamily: whatever the fast decoder accepts, proto.Unmarshal
// decodes to the same family.
func FuzzDecodeFamily(f *testing.F) {
	for _, mf := range testFamilies() {
		b, err := proto.Marshal(mf)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeSimpleFamily(b)
		if !ok {
			return
		}
		want := &dto.MetricFamily{}
		require.NoError(t, proto.Unmarshal(b, want), "the fast path accepted what proto.Unmarshal refuses")
		require.True(t, proto.Equal(want, got), "\n%v\n%v", want, got)
	})
}

func BenchmarkDecodeFamily(b *testing.B) {
	mf := &dto.MetricFamily{Name: proto.String("bench_value"), Type: dto.MetricType_GAUGE.Enum()}
	for i := range 400 {
		mf.Metric = append(mf.Metric, &dto.Metric{Label: []*dto.LabelPair{
			{Name: proto.String("job"), Value: proto.String("bench")}, {Name: proto.String("series"), Value: proto.String("s" + string(rune('a'+i%26)))},
		}, Gauge: &dto.Gauge{Value: proto.Float64(float64(i))}})
	}
	enc, err := proto.Marshal(mf)
	require.NoError(b, err)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeFamily(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(enc, &dto.MetricFamily{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// referenceProto decodes a delimited body with proto.Unmarshal alone.
func referenceProto(b []byte) (map[string]*dto.MetricFamily, error) {
	fams := map[string]*dto.MetricFamily{}
	for len(b) > 0 {
		size, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if size > uint64(len(b)) {
			return nil, io.ErrUnexpectedEOF
		}
		mf := &dto.MetricFamily{}
		if err := proto.Unmarshal(b[:size], mf); err != nil {
			return nil, err
		}
		b = b[size:]
		fams[mf.GetName()] = mf
	}
	return fams, nil
}

// FuzzDecodeProto: a protobuf push body decodes to what proto.Unmarshal
// makes of each of its messages, families of every kind side by side (the
// fast path shares its slabs and its copy of the body across them).
func FuzzDecodeProto(f *testing.F) {
	f.Add(encodeDelimited(f, testFamilies()...))
	f.Add(encodeDelimited(f, sortedFamilies(parseText(f, string(readTestdata(f, "node.prom"))))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeProto(b)
		// Pooled slabs, reused from input to input, decode the same.
		pooled, release, pooledErr := decodeProtoPooled(b, len(b)%2 == 0)
		require.Equal(t, err == nil, pooledErr == nil, "pooled slabs decide %q otherwise", b)
		if err == nil {
			requireSameFamilies(t, got, pooled)
			release()
		}
		want, wantErr := referenceProto(b)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		requireSameFamilies(t, want, got)
	})
}

// requireNextFieldIsConsumeField checks nextField's one-byte fast path
// against consumeField, protowire's reading, on b.
func requireNextFieldIsConsumeField(t testing.TB, b []byte) {
	f, rest, ok := nextField(b)
	wf, wrest, wok := consumeField(b)
	require.Equal(t, wok, ok, "% x", b)
	if ok {
		require.Equal(t, wf, f, "% x", b)
		require.Equal(t, wrest, rest, "% x", b)
	}
}

func TestNextFieldIsConsumeField(t *testing.T) {
	for _, b := range [][]byte{
		{}, {0x0a}, {0x0a, 0x00}, {0x0a, 0x03, 'a', 'b', 'c', 0x10}, {0x0a, 0x04, 'a', 'b', 'c'}, // bytes
		{0x0a, 0x80, 0x01}, {0x0a, 0x7f}, {0x0a, 0x81, 0x00, 'x'}, // lengths of two bytes, too long, not minimal
		{0x10, 0x05}, {0x10, 0x96, 0x01}, {0x10, 0x80}, // varints
		{0x11, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0x11, 1, 2, 3, 4, 5, 6, 7}, // fixed64, whole and cut
		{0x02, 0x01, 'x'}, {0x00, 0x01}, {0x07, 0x01}, // field 0
		{0x0b, 0x01}, {0x0c, 0x01}, {0x0d, 1, 2, 3, 4}, {0x0e, 0x01}, {0x0f, 0x01}, // groups, fixed32, bad types
		{0x7a, 0x01, 'y'}, {0x82, 0x01, 0x01, 'z'}, {0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00}, // fields 15, 16, the largest
	} {
		requireNextFieldIsConsumeField(t, b)
	}
}

func FuzzNextField(f *testing.F) {
	f.Add([]byte{0x0a, 0x03, 'a', 'b', 'c'})
	f.Add([]byte{0x11, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0x10, 0x96, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) { requireNextFieldIsConsumeField(t, b) })
}
