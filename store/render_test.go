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
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func lpair(n, v string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)}
}

func simpleMetric(typ dto.MetricType, v float64, ls ...*dto.LabelPair) *dto.Metric {
	m := &dto.Metric{Label: ls}
	switch typ {
	case dto.MetricType_COUNTER:
		m.Counter = &dto.Counter{Value: proto.Float64(v)}
	case dto.MetricType_GAUGE:
		m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
	default:
		m.Untyped = &dto.Untyped{Value: proto.Float64(v)}
	}
	return m
}

// TestBuildSimple compares build (which takes the fast path where it can)
// with buildGeneral, and both with expfmt and proto.Marshal, on families
// that qualify for the fast path and on every way of not qualifying.
func TestBuildSimple(t *testing.T) {
	g := dto.MetricType_GAUGE
	withUnknownLabel := lpair("b", "x")
	withUnknownLabel.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	withUnknownMetric := simpleMetric(g, 1, lpair("a", "1"))
	withUnknownMetric.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7))
	cases := []struct {
		name    string
		typ     dto.MetricType
		metrics []*dto.Metric
		fast    bool // buildSimple takes it
		invalid bool // build reports errors
	}{
		{"in order", g, []*dto.Metric{
			simpleMetric(g, 1, lpair("a", "1"), lpair("job", "j")),
			simpleMetric(g, 2, lpair("a", "2"), lpair("job", "j")),
		}, true, false},
		{"out of order", dto.MetricType_COUNTER, []*dto.Metric{
			simpleMetric(dto.MetricType_COUNTER, 3, lpair("a", "3")),
			simpleMetric(dto.MetricType_COUNTER, 1, lpair("a", "1"), lpair("b", "")),
			simpleMetric(dto.MetricType_COUNTER, 2, lpair("a", "2")),
			simpleMetric(dto.MetricType_COUNTER, 0),
		}, true, false},
		{"equal values under different names keep their order", dto.MetricType_UNTYPED, []*dto.Metric{
			simpleMetric(dto.MetricType_UNTYPED, 1, lpair("z", "1")),
			simpleMetric(dto.MetricType_UNTYPED, 2, lpair("a", "1")),
			simpleMetric(dto.MetricType_UNTYPED, 0),
		}, true, false},
		{"escapes and UTF-8", g, []*dto.Metric{
			simpleMetric(g, math.Inf(-1), lpair("path", "C:\\dir\n\"q\""), lpair("u", "Πρ\\")),
			simpleMetric(g, math.NaN(), lpair("path", "plain"), lpair("u", "ü")),
		}, true, false},
		{"no value set", g, []*dto.Metric{{Label: []*dto.LabelPair{lpair("a", "1")}, Gauge: &dto.Gauge{}}}, true, false},
		{"label value unset", g, []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("a")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}, true, false},
		{"empty family", g, nil, true, false},
		{"long label values", g, []*dto.Metric{
			simpleMetric(g, 1, lpair("a", strings.Repeat("x", 122))), // name and value: 123 bytes, one-byte lengths
			simpleMetric(g, 2, lpair("a", strings.Repeat("y", 123))), // 124 bytes: the pair's length needs two
			simpleMetric(g, 3, lpair("a", strings.Repeat("z", 300))),
		}, true, false},
		{"nil metric", g, []*dto.Metric{simpleMetric(g, 1, lpair("a", "1")), nil}, false, false},
		{"labels not sorted", g, []*dto.Metric{simpleMetric(g, 1, lpair("b", "1"), lpair("a", "2"))}, false, false},
		{"unknown field in a label", g, []*dto.Metric{simpleMetric(g, 1, lpair("a", "1"), withUnknownLabel)}, false, false},
		{"unknown field in a metric", g, []*dto.Metric{withUnknownMetric}, false, false},
		{"two values", g, []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}, Counter: &dto.Counter{Value: proto.Float64(2)}}}, false, false},
		{"counter with exemplar", dto.MetricType_COUNTER, []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1),
			Exemplar: &dto.Exemplar{Label: []*dto.LabelPair{lpair("trace_id", "abc")}, Value: proto.Float64(1)}}}}, false, false},
		{"counter with created timestamp", dto.MetricType_COUNTER, []*dto.Metric{
			{Label: []*dto.LabelPair{lpair("a", "1")}, Counter: &dto.Counter{Value: proto.Float64(3), CreatedTimestamp: &timestamppb.Timestamp{Seconds: 1_700_000_000, Nanos: 7}}},
			simpleMetric(dto.MetricType_COUNTER, 1, lpair("a", "0")),
		}, true, false},
		{"counter with created timestamp and exemplar", dto.MetricType_COUNTER, []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1),
			CreatedTimestamp: &timestamppb.Timestamp{Seconds: 5},
			Exemplar:         &dto.Exemplar{Label: []*dto.LabelPair{lpair("trace_id", "abc")}, Value: proto.Float64(1)}}}}, false, false},
		{"value of another type", g, []*dto.Metric{simpleMetric(dto.MetricType_COUNTER, 1)}, false, true},
		{"duplicate label name", g, []*dto.Metric{simpleMetric(g, 1, lpair("a", "1"), lpair("a", "2"))}, false, true},
		{"invalid label name", g, []*dto.Metric{simpleMetric(g, 1, lpair("", "1"))}, false, true},
		{"UTF-8 label name", g, []*dto.Metric{simpleMetric(g, 1, lpair("a.b", "1"))}, false, false},
		{"reserved label name", g, []*dto.Metric{simpleMetric(g, 1, lpair("__name__", "x"))}, false, true},
		{"label name unset", g, []*dto.Metric{{Label: []*dto.LabelPair{{Value: proto.String("v")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}, false, true},
		{"label value not UTF-8", g, []*dto.Metric{simpleMetric(g, 1, lpair("a", "ok\xff"))}, false, true},
		{"duplicate series", g, []*dto.Metric{simpleMetric(g, 1, lpair("a", "1")), simpleMetric(g, 2, lpair("a", "1"))}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mf := &dto.MetricFamily{Name: proto.String("m"), Help: proto.String("h"), Type: tc.typ.Enum(), Metric: tc.metrics}
			before := proto.Clone(mf)
			b := newBuilder()
			require.Equal(t, tc.fast, b.buildSimple(&built{name: "m", typ: tc.typ}, mf) != nil, "fast path taken")
			requireSameBuild(t, b, mf)
			require.True(t, proto.Equal(before, mf), "build modified its input")
			got := b.build(mf, time.Unix(1, 0))
			require.Equal(t, tc.invalid, len(got.errs) > 0, "errors: %v", got.errs)
		})
	}
}

// requireSameBuild builds mf with build and with buildGeneral and compares
// everything the store keeps or checks; for a valid family it compares the
// bytes with expfmt and proto.Marshal as well.
func requireSameBuild(t *testing.T, b *builder, mf *dto.MetricFamily) {
	t.Helper()
	at := time.Unix(1_700_000_000, 0)
	got := b.build(mf, at)
	want := b.buildGeneral(&built{name: mf.GetName(), typ: mf.GetType()}, mf, at)
	require.Equal(t, fmt.Sprint(want.errs), fmt.Sprint(got.errs))
	if len(want.errs) > 0 {
		require.Nil(t, got.fam)
		return
	}
	require.Len(t, got.metrics, len(want.metrics))
	for i := range want.metrics {
		require.True(t, proto.Equal(want.metrics[i], got.metrics[i]), "metric %d: want %v, got %v", i, want.metrics[i], got.metrics[i])
	}
	w, g := want.fam, got.fam
	require.Equal(t, string(textOf(w)), string(textOf(g)))
	require.Equal(t, w.pb.Load() != nil, g.pb.Load() != nil, "both paths keep eager protobuf bytes, or neither")
	require.Equal(t, mustProtobuf(t, w), mustProtobuf(t, g))
	require.Equal(t, w.seriesHashes(), g.seriesHashes())
	require.Equal(t, w.createdTimes(), g.createdTimes(), "both paths keep the same created timestamps")
	require.Equal(t, w.header(), g.header())
	require.True(t, at.Equal(g.pushTime()), "push time %v, want %v", g.pushTime(), at)

	if len(got.metrics) > 0 { // expfmt refuses a family without metrics
		var text bytes.Buffer
		_, err := expfmt.MetricFamilyToText(&text, &dto.MetricFamily{Name: mf.Name, Type: mf.Type, Metric: got.metrics})
		require.NoError(t, err)
		require.Equal(t, string(dropFirstLine(text.Bytes())), string(textOf(g)))
	}
	pb, err := proto.Marshal(&dto.MetricFamily{Metric: got.metrics})
	require.NoError(t, err)
	require.Equal(t, pb, mustProtobuf(t, g))
}

// mustProtobuf returns f's protobuf rendering, made from the text if it
// was not kept eagerly, without caching it.
func mustProtobuf(t *testing.T, f *family) []byte {
	t.Helper()
	pb, err := f.protobuf(nil)
	require.NoError(t, err)
	return pb
}

// TestBuildSimpleRandom compares the paths on random families: random
// label sets (sorted or not), values, orders and duplicates.
func TestBuildSimpleRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	names := []string{"a", "instance", "job", "node", "zone"}
	values := []string{"", "0", "1", "10", "eu-west-1", "x\"y", "Πρ", "a\\b\nc"}
	floats := []float64{0, 1, -1, 0.5, 1e-9, 1234.5678, 2, 123456, -7, 1e6, math.MaxFloat64, math.Inf(1), math.NaN()}
	b := newBuilder()
	for i := range 500 {
		typ := []dto.MetricType{dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED}[rnd.IntN(3)]
		mf := &dto.MetricFamily{Name: proto.String("m"), Type: typ.Enum()}
		for range rnd.IntN(40) {
			var ls []*dto.LabelPair
			for _, n := range names {
				if rnd.IntN(3) > 0 {
					ls = append(ls, lpair(n, values[rnd.IntN(len(values))]))
				}
			}
			if rnd.IntN(10) == 0 && len(ls) > 1 {
				ls[0], ls[1] = ls[1], ls[0]
			}
			m := simpleMetric(typ, floats[rnd.IntN(len(floats))], ls...)
			if typ == dto.MetricType_COUNTER && rnd.IntN(3) == 0 {
				m.Counter.CreatedTimestamp = &timestamppb.Timestamp{Seconds: rnd.Int64N(2_000_000_000), Nanos: rnd.Int32N(1_000_000_000)}
			}
			mf.Metric = append(mf.Metric, m)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { requireSameBuild(t, b, mf) })
	}
}

func TestGaugeLabels(t *testing.T) {
	cases := []struct {
		key  map[string]string
		want []string // name=value in order
	}{
		{map[string]string{"job": "j"}, []string{"instance=", "job=j"}},
		{map[string]string{"job": "j", "a": "1"}, []string{"a=1", "instance=", "job=j"}},
		{map[string]string{"job": "j", "instance": "i"}, []string{"instance=i", "job=j"}},
		{map[string]string{"job": "", "instance": ""}, []string{"instance=", "job="}},
		{map[string]string{"job": "j", "a": "1", "instance": "i", "zone": "z"}, []string{"a=1", "instance=i", "job=j", "zone=z"}},
		{map[string]string{"job": "j", "inst": "x", "instancf": "y"}, []string{"inst=x", "instance=", "instancf=y", "job=j"}},
		{map[string]string{"a": "1", "b": "2/3"}, []string{"a=1", "b=2/3", "instance="}},
	}
	labelsOf := func(mf *dto.MetricFamily) []string {
		var got []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			got = append(got, lp.GetName()+"="+lp.GetValue())
		}
		return got
	}
	// One builder for every case, reset between writes as putBuilder does:
	// each write builds two gauges, the second after the first's, and a
	// key of 40 labels outgrows the scratch in the middle of a write.
	big := map[string]string{"job": "j"}
	var bigWant []string
	for i := range 40 {
		n := fmt.Sprintf("l%02d", i)
		big[n] = "v"
		bigWant = append(bigWant, n+"=v")
	}
	bigWant = append([]string{"instance="}, bigWant...)
	bigWant = append(bigWant, "job=j")
	sortedWant := slices.Clone(bigWant)
	slices.Sort(sortedWant)
	b := newBuilder()
	for i, tc := range cases {
		k := NewGroupKey(tc.key)
		t.Run(k.String(), func(t *testing.T) {
			defer b.gauges.reset()
			mf := b.timeGauge(PushFailureTimeName, k, time.Unix(3, 500_000_000))
			require.Equal(t, tc.want, labelsOf(mf))
			require.Equal(t, 3.5, mf.GetMetric()[0].GetGauge().GetValue())
			require.Equal(t, pushFailureTimeHelp, mf.GetHelp())
			require.Equal(t, dto.MetricType_GAUGE, mf.GetType())
			second, want := k, tc.want
			if i%2 == 1 {
				second, want = NewGroupKey(big), sortedWant
			}
			push := b.timeGauge(PushTimeName, second, time.Time{})
			require.Equal(t, want, labelsOf(push))
			require.Zero(t, push.GetMetric()[0].GetGauge().GetValue())
			require.Equal(t, pushTimeHelp, push.GetHelp())
			require.Equal(t, tc.want, labelsOf(mf), "the first gauge is intact")
			require.Equal(t, 3.5, mf.GetMetric()[0].GetGauge().GetValue())
			third := b.timeGauge(PushTimeName, k, time.Unix(7, 0)) // past the two kept parts
			require.Equal(t, tc.want, labelsOf(third))
			require.Equal(t, 7.0, third.GetMetric()[0].GetGauge().GetValue())
			require.Equal(t, want, labelsOf(push), "the second gauge is intact")
		})
	}
	b.gauges.reset()
	require.LessOrEqual(t, cap(b.gauges.pairs), maxKeptGaugeLabels, "a builder keeps bounded label scratch")
}

// A push of many families leaves no builder in the pool with room for
// them all: the scratch of built families is kept only up to
// maxKeptBuilts.
func TestBuilderKeepsBoundedScratch(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	fams := map[string]*dto.MetricFamily{}
	for i := range 3 * maxKeptBuilts {
		name := fmt.Sprintf("f%d", i)
		fams[name] = &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}
	}
	require.NoError(t, s.Apply(Push{Key: NewGroupKey(map[string]string{"job": "many"}), Families: fams, Time: time.Unix(1, 0)}))
	for range 4 {
		b := s.builders.Get().(*builder)
		require.LessOrEqual(t, cap(b.builts), maxKeptBuilts)
		require.LessOrEqual(t, cap(b.news), maxKeptBuilts)
		defer s.builders.Put(b)
	}
}
