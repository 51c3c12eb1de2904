package store

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// staleNaN is Prometheus' stale marker: a NaN with a payload.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

func summaryMetric(count uint64, sum float64, qs ...float64) *dto.Metric {
	s := &dto.Summary{SampleCount: proto.Uint64(count), SampleSum: proto.Float64(sum)}
	for i := 0; i+1 < len(qs); i += 2 {
		s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(qs[i]), Value: proto.Float64(qs[i+1])})
	}
	return &dto.Metric{Summary: s}
}

// histogramMetric returns a histogram; bounds and counts alternate in bs.
func histogramMetric(count uint64, sum float64, bs ...float64) *dto.Metric {
	h := &dto.Histogram{SampleCount: proto.Uint64(count), SampleSum: proto.Float64(sum)}
	for i := 0; i+1 < len(bs); i += 2 {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(bs[i]), CumulativeCount: proto.Uint64(uint64(bs[i+1]))})
	}
	return &dto.Metric{Histogram: h}
}

func withLabels(m *dto.Metric, ls ...*dto.LabelPair) *dto.Metric {
	m.Label = ls
	return m
}

// TestLazyProtobufRoundTrip builds families whose values and labels are
// hard on the text format, on the one-pass path (build takes it for
// counters, gauges and untyped) and on the general, expfmt path, and checks
// that the protobuf bytes (kept eagerly or rendered from the text) are
// proto.Marshal's, that exactly the families the text cannot carry keep
// eager bytes, and that decoding gives the pushed family back.
func TestLazyProtobufRoundTrip(t *testing.T) {
	g, c, u := dto.MetricType_GAUGE, dto.MetricType_COUNTER, dto.MetricType_UNTYPED
	sum, hist, ghist := dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM
	escaped := []*dto.LabelPair{lpair("a", ""), lpair("path", "C:\\dir\n\"q\"\\n"), lpair("u", "Πρ\\ ü {}=,")}
	tricky := []float64{0, 1, -1, 0.5, -21.5, 1e6, 1e-7, 1e300, -1e-300, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, 1 << 53, 1<<53 + 2, 999999.0000000001, 0.1 + 0.2, math.NaN(), math.Inf(1), math.Inf(-1)}
	var simple []*dto.Metric
	for i, v := range tricky {
		simple = append(simple, simpleMetric(g, v, lpair("i", string(rune('a'+i))), escaped[i%len(escaped)]))
	}
	withUnknown := simpleMetric(g, 1)
	withUnknown.Gauge.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	exemplar := &dto.Exemplar{Label: []*dto.LabelPair{lpair("trace_id", "abc")}, Value: proto.Float64(1)}
	created := timestamppb.New(time.Unix(1_700_000_000, 5))
	// Created timestamps of every encoded shape: none, an empty message,
	// negative fields (ten-byte varints), and one the text cannot stand
	// beside (unknown fields).
	createds := []*timestamppb.Timestamp{nil, {}, {Seconds: -62135596800}, {Nanos: -1}, {Seconds: 1 << 40, Nanos: 999_999_999}, created}
	createdUnknown := timestamppb.New(time.Unix(1, 0))
	createdUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	var counters, summaries, histograms []*dto.Metric
	for i, ts := range createds {
		l := lpair("i", string(rune('a'+i)))
		counters = append(counters, &dto.Metric{Label: []*dto.LabelPair{l}, Counter: &dto.Counter{Value: proto.Float64(float64(i)), CreatedTimestamp: ts}})
		s := withLabels(summaryMetric(uint64(i), 1.5, 0.5, 1), l)
		s.Summary.CreatedTimestamp = ts
		summaries = append(summaries, s)
		h := withLabels(histogramMetric(uint64(i), 2.5, 0.1, 0, 1, float64(i)), l)
		h.Histogram.CreatedTimestamp = ts
		histograms = append(histograms, h)
	}

	cases := []struct {
		name    string
		typ     dto.MetricType
		metrics []*dto.Metric
		eager   bool // the text cannot carry it
	}{
		{"gauge tricky values and escapes", g, simple, false},
		{"counter", c, []*dto.Metric{simpleMetric(c, math.Inf(1)), simpleMetric(c, 1e-9, lpair("x", "y"))}, false},
		{"untyped", u, []*dto.Metric{simpleMetric(u, math.NaN(), escaped...), simpleMetric(u, -0.25)}, false},
		{"empty family", g, nil, false},
		{"negative zero", g, []*dto.Metric{simpleMetric(g, 1, lpair("a", "1")), simpleMetric(g, math.Copysign(0, -1), lpair("a", "2"))}, true},
		{"stale marker", g, []*dto.Metric{simpleMetric(g, staleNaN)}, true},
		{"value unset", g, []*dto.Metric{{Gauge: &dto.Gauge{}}}, true},
		{"label value unset", g, []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("a")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}, true},
		{"unknown field", g, []*dto.Metric{withUnknown}, true},
		{"two values", g, []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}, Counter: &dto.Counter{Value: proto.Float64(2)}}}, true},
		{"counter exemplar", c, []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1), Exemplar: exemplar}}}, true},
		{"counter created", c, []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1), CreatedTimestamp: created}}}, false},
		{"counters created or not", c, counters, false},
		{"counter created with unknown fields", c, []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1), CreatedTimestamp: createdUnknown}}}, true},
		{"counter created and -0", c, []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(math.Copysign(0, -1)), CreatedTimestamp: created}}}, true},

		{"summary", sum, []*dto.Metric{
			withLabels(summaryMetric(0, 0)),
			withLabels(summaryMetric(7, -1.5e-300, 0.5, 1, 0.99, math.Inf(1), 0.999, math.NaN()), escaped...),
			withLabels(summaryMetric(1<<53, math.MaxFloat64, 0, math.Inf(-1), 1, 0.1+0.2), lpair("a", "x")),
		}, false},
		{"summary NaN sum", sum, []*dto.Metric{summaryMetric(1, math.NaN(), 0.5, 2)}, false},
		{"summary count above 2^53", sum, []*dto.Metric{summaryMetric(1<<53+1, 1)}, true},
		{"summary NaN quantile", sum, []*dto.Metric{summaryMetric(1, 1, math.NaN(), 2)}, true},
		{"summary -0 sum", sum, []*dto.Metric{summaryMetric(1, math.Copysign(0, -1))}, true},
		{"summary count unset", sum, []*dto.Metric{{Summary: &dto.Summary{SampleSum: proto.Float64(1)}}}, true},
		{"summary created", sum, []*dto.Metric{{Summary: &dto.Summary{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1), CreatedTimestamp: created}}}, false},
		{"summaries created or not", sum, summaries, false},
		{"summary created with unknown fields", sum, []*dto.Metric{{Summary: &dto.Summary{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1), CreatedTimestamp: createdUnknown}}}, true},

		{"histogram with +Inf buckets", hist, []*dto.Metric{
			withLabels(histogramMetric(5, 2.5, 0.1, 1, 1, 3, math.Inf(1), 5)),
			withLabels(histogramMetric(1<<53, 1e300, 1e-300, 0, math.MaxFloat64, 1<<53, math.Inf(1), 1<<53), escaped...),
			withLabels(histogramMetric(0, 0, math.Inf(1), 0), lpair("a", "z")),
		}, false},
		{"histogram without +Inf buckets", hist, []*dto.Metric{
			withLabels(histogramMetric(5, math.NaN(), -1, 1, 0, 2, 1, 3)),
			withLabels(histogramMetric(2, -2, math.Inf(-1), 1), lpair("a", "b\\\"")),
			withLabels(histogramMetric(3, 1), lpair("a", "no buckets")),
		}, false},
		{"gauge histogram", ghist, []*dto.Metric{histogramMetric(3, 1.5, 0.5, 1, math.Inf(1), 3)}, false},
		{"histograms with and without +Inf", hist, []*dto.Metric{
			withLabels(histogramMetric(5, 1, 1, 2, math.Inf(1), 5), lpair("a", "1")),
			withLabels(histogramMetric(5, 1, 1, 2), lpair("a", "2")),
		}, true},
		{"histogram count above 2^53", hist, []*dto.Metric{histogramMetric(1<<53+1, 1, 1, 1)}, true},
		{"histogram bucket count above 2^53", hist, []*dto.Metric{histogramMetric(1, 1, 1, 1<<54)}, true},
		{"histogram NaN bound", hist, []*dto.Metric{histogramMetric(1, 1, math.NaN(), 1)}, true},
		{"histogram stale sum", hist, []*dto.Metric{histogramMetric(1, staleNaN, 1, 1)}, true},
		{"float histogram", hist, []*dto.Metric{{Histogram: &dto.Histogram{SampleCountFloat: proto.Float64(2.5), SampleSum: proto.Float64(1),
			Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCountFloat: proto.Float64(2.5)}}}}}, true},
		{"native histogram", hist, []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1),
			Schema: proto.Int32(3), ZeroThreshold: proto.Float64(1e-9), ZeroCount: proto.Uint64(0),
			PositiveSpan: []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(1)}}, PositiveDelta: []int64{1}}}}, true},
		{"histogram exemplar", hist, []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1),
			Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(1), Exemplar: exemplar}}}}}, true},
		{"histogram created", hist, []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1), CreatedTimestamp: created}}}, false},
		{"histograms created or not, +Inf added", hist, histograms, false},
		{"gauge histogram created", ghist, histograms[4:], false},
		{"histogram created with unknown fields", hist, []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1), CreatedTimestamp: createdUnknown}}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mf := &dto.MetricFamily{Name: proto.String("m"), Help: proto.String("h \\ \n"), Type: tc.typ.Enum(), Metric: tc.metrics}
			requireRoundTrip(t, mf, tc.eager)
		})
	}
}

// requireRoundTrip builds mf on build's path and on the general path and
// checks the protobuf bytes and the decoded family of both.
func requireRoundTrip(t *testing.T, mf *dto.MetricFamily, eager bool) {
	t.Helper()
	b := newBuilder()
	at := time.Unix(1_700_000_000, 0)
	paths := map[string]*built{
		"build":   b.build(mf, at),
		"general": b.buildGeneral(&built{name: mf.GetName(), typ: mf.GetType()}, mf, at),
	}
	for path, got := range paths {
		require.Empty(t, got.errs, path)
		f := got.fam
		require.Equal(t, eager, f.pb.Load() != nil, "%s: eager protobuf bytes", path)
		created := slices.ContainsFunc(got.metrics, func(m *dto.Metric) bool { return createdOf(f.typ(), m) != nil })
		require.Equal(t, !eager && created, f.created != nil, "%s: created timestamps kept beside the text", path)
		want, err := proto.Marshal(&dto.MetricFamily{Metric: got.metrics})
		require.NoError(t, err)
		require.Equal(t, want, mustProtobuf(t, f), path)
		if !eager && !hasSimpleText(f.typ()) {
			// The lazy rendering reads the text itself, without falling
			// back to expfmt's parser.
			direct, n, err := new(complexText).appendProtobuf([]byte{}, f.name, f.typ(), textOf(f), f.infAdded(), f.createdTimes())
			require.NoError(t, err, "%s: text %q", path, textOf(f))
			require.Equal(t, f.series(), n, path)
			require.Equal(t, want, direct, path)
			if f.series() > 0 {
				// And through expfmt's parser, the fallback for text the
				// direct reading does not take.
				parsed, err := f.parsedProtobuf()
				require.NoError(t, err, path)
				require.Equal(t, want, parsed, path)
			}
		}

		dec, err := f.decode()
		require.NoError(t, err)
		wantMF := &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metric: got.metrics}
		require.True(t, proto.Equal(wantMF, dec), "%s: decoded %v, want %v", path, dec, wantMF)
		require.Equal(t, eager, f.pb.Load() != nil, "%s: decode must not cache a rendering", path)

		cache := &renderCache{}
		cached, err := f.protobuf(cache)
		require.NoError(t, err)
		require.Equal(t, want, cached, path)
		if f.series() > 0 { // no metrics: nothing to render or cache
			require.NotNil(t, f.kept(), "%s: a scrape caches the rendering", path)
		}
		again, err := f.protobuf(cache)
		require.NoError(t, err)
		require.Equal(t, unsafeData(cached), unsafeData(again), "%s: the second scrape reuses the cached bytes", path)
	}
}

// unsafeData identifies a slice's backing array (nil for an empty slice).
func unsafeData(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

// TestLazyProtobufRandom checks the round trip on random summaries and
// histograms and on random simple families, with values drawn from a pool
// of hard cases, some of which the text cannot carry.
func TestLazyProtobufRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 5))
	floats := []float64{0, 1, -1, 0.5, 1e-9, 1234.5678, 1e6, 1e21, math.MaxFloat64, math.SmallestNonzeroFloat64,
		math.Inf(1), math.Inf(-1), math.NaN(), math.Copysign(0, -1), staleNaN}
	counts := []uint64{0, 1, 5, 1e6, 1 << 53, 1<<53 + 1}
	values := []string{"", "x", "a\\b\nc\"d", "Πρ"}
	f := func() float64 { return floats[rnd.IntN(len(floats))] }
	types := []dto.MetricType{dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED, dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM}
	kinds := map[bool]int{} // families rendered lazily (true) and eagerly
	for i := range 400 {
		typ := types[rnd.IntN(len(types))]
		mf := &dto.MetricFamily{Name: proto.String("m"), Type: typ.Enum()}
		inf := rnd.IntN(2) == 0
		for j := range rnd.IntN(6) {
			var m *dto.Metric
			switch typ {
			case dto.MetricType_SUMMARY:
				m = summaryMetric(counts[rnd.IntN(len(counts))], f())
				for range rnd.IntN(4) {
					m.Summary.Quantile = append(m.Summary.Quantile, &dto.Quantile{Quantile: proto.Float64(f()), Value: proto.Float64(f())})
				}
			case dto.MetricType_HISTOGRAM:
				m = histogramMetric(counts[rnd.IntN(len(counts))], f())
				for range rnd.IntN(4) {
					m.Histogram.Bucket = append(m.Histogram.Bucket, &dto.Bucket{UpperBound: proto.Float64(f()), CumulativeCount: proto.Uint64(counts[rnd.IntN(len(counts))])})
				}
				if inf {
					m.Histogram.Bucket = append(m.Histogram.Bucket, &dto.Bucket{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: m.Histogram.SampleCount})
				}
			default:
				m = simpleMetric(typ, f())
			}
			m.Label = []*dto.LabelPair{lpair("i", strings.Repeat("i", j)), lpair("v", values[rnd.IntN(len(values))])}
			if rnd.IntN(2) == 0 { // kept beside the text, where it has a place
				setCreatedOf(m, timestamppb.New(time.Unix(rnd.Int64N(4e9)-2e9, rnd.Int64N(1e9))))
			}
			mf.Metric = append(mf.Metric, m)
		}
		// Out of client_golang's order, half the time: both paths sort.
		if rnd.IntN(2) == 0 {
			rnd.Shuffle(len(mf.Metric), func(i, j int) { mf.Metric[i], mf.Metric[j] = mf.Metric[j], mf.Metric[i] })
		}
		exact, _ := textExactAll(typ, mf.Metric)
		kinds[exact]++
		t.Run(fmt.Sprint(i, typ), func(t *testing.T) { requireRoundTrip(t, mf, !exact) })
	}
	require.Greater(t, kinds[true], 100, "lazy families")
	require.Greater(t, kinds[false], 100, "eager families")
}

// TestLazyProtobufScrape checks at the store level that a push keeps no
// protobuf bytes, that a Snapshot does not cache any, and that the first
// protobuf scrape caches them so the second one writes the same bytes
// from the cache.
func TestLazyProtobufScrape(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	p := benchPush(1, time.Unix(1_700_000_000, 0))
	p.Families["m_hist"] = &dto.MetricFamily{Name: proto.String("m_hist"), Type: dto.MetricType_HISTOGRAM.Enum(),
		Help: proto.String("A histogram."), Metric: []*dto.Metric{withLabels(histogramMetric(3, 1.5, 1, 2), lpair("a", "b"))}}
	require.NoError(t, s.Apply(p))
	fams := func() []*family {
		var out []*family
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, g := range s.groups {
			for _, sl := range g.slots {
				out = append(out, sl.fam)
			}
		}
		return out
	}
	cachedCount := func() int {
		n := 0
		for _, f := range fams() {
			if f.kept() != nil {
				n++
			}
		}
		return n
	}
	require.Zero(t, cachedCount(), "a push renders no protobuf")
	before := s.Snapshot()
	require.Zero(t, cachedCount(), "a snapshot caches no protobuf")

	var first, second bytes.Buffer
	require.NoError(t, s.WriteExposition(&first, FormatProtoDelim, nil))
	require.Equal(t, len(fams()), cachedCount(), "the first protobuf scrape caches every family")
	require.NoError(t, s.WriteExposition(&second, FormatProtoDelim, nil))
	require.Equal(t, first.Bytes(), second.Bytes())
	require.Equal(t, before, s.Snapshot(), "snapshot from the cache equals the one from the text")
}
