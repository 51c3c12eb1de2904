package store

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pushring/pushring/internal/procmetrics"
	"github.com/pushring/pushring/internal/textfloat"
)

// TestMetricEncoderMatchesProtoMarshal checks that the encoder writes the
// bytes proto.Marshal writes for a MetricFamily holding only the metrics,
// on the fast path and on the fallback alike.
func TestMetricEncoderMatchesProtoMarshal(t *testing.T) {
	lp := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)} }
	long := string(make([]byte, 300)) // a length that needs a two-byte varint
	withUnknown := &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(1)}}
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7))
	cases := map[string][]*dto.Metric{
		"gauge":             {{Label: []*dto.LabelPair{lp("a", "1"), lp("job", "j")}, Gauge: &dto.Gauge{Value: proto.Float64(-21.5)}}},
		"counter":           {{Label: []*dto.LabelPair{lp("a", long)}, Counter: &dto.Counter{Value: proto.Float64(math.Inf(1))}}},
		"untyped":           {{Untyped: &dto.Untyped{Value: proto.Float64(math.NaN())}}},
		"value unset":       {{Gauge: &dto.Gauge{}}},
		"label parts unset": {{Label: []*dto.LabelPair{{Name: proto.String("a")}, {Value: proto.String("v")}, {}}, Gauge: &dto.Gauge{Value: proto.Float64(0)}}},
		"several metrics": {
			{Label: []*dto.LabelPair{lp("x", "1")}, Counter: &dto.Counter{Value: proto.Float64(1)}},
			{Label: []*dto.LabelPair{lp("x", "2")}, Counter: &dto.Counter{Value: proto.Float64(2)}},
		},
		"counter with exemplar": {{Counter: &dto.Counter{Value: proto.Float64(1), Exemplar: &dto.Exemplar{
			Label: []*dto.LabelPair{lp("trace_id", "abc")}, Value: proto.Float64(1)}}}},
		"counter with created timestamp": {{Counter: &dto.Counter{Value: proto.Float64(1), CreatedTimestamp: timestamppb.New(timestamppb.Now().AsTime())}}},
		"two values":                     {{Gauge: &dto.Gauge{Value: proto.Float64(1)}, Counter: &dto.Counter{Value: proto.Float64(2)}}},
		"summary": {{Summary: &dto.Summary{SampleCount: proto.Uint64(3), SampleSum: proto.Float64(1.5),
			Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(1)}}}}},
		"histogram": {{Histogram: &dto.Histogram{SampleCount: proto.Uint64(3), SampleSum: proto.Float64(1.5),
			Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(2)}}}}},
		"unknown fields": {withUnknown},
	}
	var enc metricEncoder
	for name, ms := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := proto.Marshal(&dto.MetricFamily{Metric: ms})
			require.NoError(t, err)
			n := enc.size(ms)
			got, err := enc.appendTo(make([]byte, 0, n), ms)
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.Len(t, got, n)
		})
	}
}

func TestMetricEncoderFastPath(t *testing.T) {
	var enc metricEncoder
	enc.size([]*dto.Metric{
		{Gauge: &dto.Gauge{Value: proto.Float64(1)}},
		{Summary: &dto.Summary{}},
	})
	require.Equal(t, []bool{true, false}, enc.simple)
}

// TestTextSamplesMatchExpfmt checks the text fast path against expfmt.
func TestTextSamplesMatchExpfmt(t *testing.T) {
	lp := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)} }
	values := []float64{0, 1, -1, 0.5, -21.5, 1e6, 1e-7, 123456789012345678901234567890, 1234.5678 * 7,
		math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, 17,
		math.Copysign(0, -1), 2, -2, 10, 100, 120000, 999999, -999999, 1e6 - 0.5, 1000001, -1e6, 1e15, 1 << 53, 999999.0000000001}
	labelSets := [][]*dto.LabelPair{
		nil,
		{lp("job", "j")},
		{lp("a", ""), lp("instance", "edge-node-00042"), lp("job", "j")},
		{lp("path", "C:\\dir\n\"q\""), lp("u", "Πρ\\")},
	}
	for _, typ := range []dto.MetricType{dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED} {
		require.True(t, hasSimpleText(typ))
		var ms []*dto.Metric
		for i, v := range values {
			m := &dto.Metric{Label: labelSets[i%len(labelSets)]}
			switch typ {
			case dto.MetricType_COUNTER:
				m.Counter = &dto.Counter{Value: proto.Float64(v)}
			case dto.MetricType_GAUGE:
				m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
			default:
				m.Untyped = &dto.Untyped{Value: proto.Float64(v)}
			}
			ms = append(ms, m)
		}
		ms = append(ms, &dto.Metric{Counter: &dto.Counter{}, Gauge: &dto.Gauge{}, Untyped: &dto.Untyped{}}) // values unset
		var want bytes.Buffer
		_, err := expfmt.MetricFamilyToText(&want, &dto.MetricFamily{Name: proto.String("m"), Type: typ.Enum(), Metric: ms})
		require.NoError(t, err)
		require.Equal(t, string(dropFirstLine(want.Bytes())), string(appendTextSamples(nil, "m", typ, ms)), typ.String())
	}
	require.False(t, hasSimpleText(dto.MetricType_SUMMARY))
	require.False(t, hasSimpleText(dto.MetricType_HISTOGRAM))
}

// TestOwnTextIsExpfmts checks that appendOwnText writes what
// expfmt.MetricFamilyToText writes for the families a registry gathers
// (the Go and process collectors, every kind of vector, escapes in help
// and label values), for a peer's own families as captured, and for
// random summaries and histograms; and that it declines what it does
// not cover, leaving the buffer as it was.
func TestOwnTextIsExpfmts(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), procmetrics.New())
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "own_requests_total", Help: "Back\\slash and\nnewline."}, []string{"code", "path"})
	cv.WithLabelValues("200", "/a\"b\\c\nd").Add(3)
	cv.WithLabelValues("500", "").Add(0.25)
	gv := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "own_gauge", Help: ""}, []string{"l"})
	gv.WithLabelValues("x").Set(math.NaN())
	gv.WithLabelValues("y").Set(math.Inf(-1))
	gv.WithLabelValues("z").Set(1234567.125)
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "own_seconds", Help: "H.", Buckets: []float64{0.001, 0.5, 1, 10}}, []string{"handler"})
	hv.WithLabelValues("push").Observe(0.7)
	hv.WithLabelValues("scrape").Observe(20)
	sv := prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "own_summary", Help: "S.", Objectives: map[float64]float64{0.5: 0.05, 0.99: 0.001}}, []string{"k"})
	sv.WithLabelValues("v").Observe(3)
	untyped := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "own_untyped", Help: "U."}, func() float64 { return -0.5 })
	reg.MustRegister(cv, gv, hv, sv, untyped)
	gathered, err := reg.Gather()
	require.NoError(t, err)

	fams := append(gathered, realOwnFamilies(t)...)
	rng := rand.New(rand.NewPCG(7, 17))
	helps := []string{"", "Plain.", "Back\\slash\nnewline \"quoted\"."}
	for i := range 300 {
		for _, typ := range []dto.MetricType{dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM} {
			mf := randomComplex(rng, typ)
			if i%4 > 0 {
				mf.Help = proto.String(helps[i%len(helps)])
			}
			fams = append(fams, mf)
		}
	}
	for _, mf := range fams {
		var want bytes.Buffer
		_, err := expfmt.MetricFamilyToText(&want, mf)
		require.NoError(t, err, mf.GetName())
		got, ok := appendOwnText([]byte("prefix\n"), mf)
		require.True(t, ok, mf.GetName())
		require.Equal(t, "prefix\n"+want.String(), string(got), mf.GetName())
	}

	declined := map[string]*dto.MetricFamily{
		"timestamp":  {Name: proto.String("t"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}, TimestampMs: proto.Int64(5)}}},
		"no value":   {Name: proto.String("c_total"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}},
		"no summary": {Name: proto.String("s"), Type: dto.MetricType_SUMMARY.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}},
		"UTF-8 name": {Name: proto.String("own.metric"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}},
		"UTF-8 label": {Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{
			Label: []*dto.LabelPair{{Name: proto.String("a.b"), Value: proto.String("v")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)},
		}}},
		"no metrics": {Name: proto.String("e"), Type: dto.MetricType_GAUGE.Enum()},
		"colon in a label name": {Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{
			Label: []*dto.LabelPair{{Name: proto.String("a:b"), Value: proto.String("v")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)},
		}}},
		"unknown type": {Name: proto.String("u"), Type: dto.MetricType(42).Enum(), Metric: []*dto.Metric{{Untyped: &dto.Untyped{Value: proto.Float64(1)}}}},
		"no histogram": {Name: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}},
		"timestamped histogram": {Name: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{{
			Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1)}, TimestampMs: proto.Int64(5),
		}}},
	}
	for what, mf := range declined {
		got, ok := appendOwnText([]byte("prefix\n"), mf)
		require.False(t, ok, what)
		require.Equal(t, "prefix\n", string(got), what)
	}
}

// TestOwnTextRandomFamilies gives appendOwnText random families of every
// type, with what a registry never gathers mixed in: nil label pairs,
// names expfmt must quote, timestamps, exemplars, created timestamps,
// native histogram fields, a metric without its value. Whatever it takes
// it writes as expfmt does, and it never takes what expfmt refuses;
// whatever it declines leaves the buffer as it was.
func TestOwnTextRandomFamilies(t *testing.T) {
	rng := rand.New(rand.NewPCG(99, 1))
	floats := []float64{0, 1, -1, math.Copysign(0, -1), 0.5, 999999, 1e6, -999999, -1e6, 1e-9, 1e21, math.NaN(), math.Inf(1), math.Inf(-1), 1 << 52, 0.1}
	float := func() float64 {
		if rng.IntN(4) == 0 {
			return float64(rng.IntN(3_000_000) - 1_500_000)
		}
		return floats[rng.IntN(len(floats))]
	}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	names := []string{"m", "m", "m", "m_total", "a:b", "x.y", "0a", "", "ü"}
	labelNames := []string{"l", "l", "le", "quantile", "a:b", "a.b", "", "__name__", "_x9"}
	values := []string{"", "v", "q\"", "b\\s", "n\nl", "ü", "\xff"}
	helps := []*string{nil, proto.String(""), proto.String("h"), proto.String("a\\b\nc\"d")}
	types := []dto.MetricType{dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_SUMMARY, dto.MetricType_UNTYPED,
		dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM, dto.MetricType(9)}
	taken := 0
	for range 50_000 {
		typ := types[rng.IntN(len(types))]
		mf := &dto.MetricFamily{Name: proto.String(pick(names)), Help: helps[rng.IntN(len(helps))], Type: typ.Enum()}
		for range rng.IntN(4) {
			m := &dto.Metric{}
			for range rng.IntN(3) {
				if rng.IntN(30) == 0 {
					m.Label = append(m.Label, nil)
					continue
				}
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(pick(labelNames)), Value: proto.String(pick(values))})
			}
			if rng.IntN(20) == 0 {
				m.TimestampMs = proto.Int64(5)
			}
			// Mostly the value of the family's type; sometimes another.
			value := typ
			if rng.IntN(12) == 0 {
				value = types[rng.IntN(len(types))]
			}
			switch value {
			case dto.MetricType_COUNTER:
				m.Counter = &dto.Counter{Value: proto.Float64(float())}
				if rng.IntN(2) == 0 {
					m.Counter.Exemplar = &dto.Exemplar{Value: proto.Float64(1), Label: []*dto.LabelPair{{Name: proto.String("t"), Value: proto.String("x")}}}
					m.Counter.CreatedTimestamp = timestamppb.New(time.Unix(1_700_000_000, 0))
				}
			case dto.MetricType_GAUGE:
				m.Gauge = &dto.Gauge{Value: proto.Float64(float())}
			case dto.MetricType_UNTYPED:
				m.Untyped = &dto.Untyped{Value: proto.Float64(float())}
			case dto.MetricType_SUMMARY:
				s := &dto.Summary{SampleCount: proto.Uint64(rng.Uint64N(100)), SampleSum: proto.Float64(float())}
				for range rng.IntN(3) {
					s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(float()), Value: proto.Float64(float())})
				}
				m.Summary = s
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := &dto.Histogram{SampleSum: proto.Float64(float())}
				if rng.IntN(2) == 0 {
					h.SampleCount = proto.Uint64(rng.Uint64N(100))
				} else {
					h.SampleCountFloat = proto.Float64(float())
				}
				if rng.IntN(4) == 0 {
					h.Schema, h.ZeroThreshold = proto.Int32(3), proto.Float64(1e-128)
					h.PositiveSpan = []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(1)}}
					h.PositiveDelta = []int64{2}
					h.CreatedTimestamp = timestamppb.New(time.Unix(1_700_000_000, 0))
				}
				for range rng.IntN(4) {
					b := &dto.Bucket{UpperBound: proto.Float64(float())}
					if rng.IntN(2) == 0 {
						b.CumulativeCount = proto.Uint64(rng.Uint64N(100))
					} else {
						b.CumulativeCountFloat = proto.Float64(float())
					}
					if rng.IntN(3) == 0 {
						b.Exemplar = &dto.Exemplar{Value: proto.Float64(1)}
					}
					h.Bucket = append(h.Bucket, b)
				}
				m.Histogram = h
			}
			mf.Metric = append(mf.Metric, m)
		}
		var want bytes.Buffer
		_, expfmtErr := expfmt.MetricFamilyToText(&want, mf)
		got, ok := appendOwnText([]byte("prefix\n"), mf)
		if !ok {
			require.Equal(t, "prefix\n", string(got), "declined, but the buffer changed: %v", mf)
			continue
		}
		taken++
		require.NoError(t, expfmtErr, "taken where expfmt refuses: %v", mf)
		require.Equal(t, "prefix\n"+want.String(), string(got), "%v", mf)
	}
	require.Greater(t, taken, 5_000, "appendOwnText takes a good share of the families (7,215 of the 50,000 with this seed)")
}

// appendTextFloat writes whole numbers from 1e6 to 2^53 as strconv's
// shortest 'g' format does, without it.
func TestAppendTextFloatWholeNumbers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []float64{999_999, 1e6, 1_000_001, 1.5e6, 123456789, 1e15, 1e15 + 1, maxExactInt - 1, maxExactInt, maxExactInt + 2, 2.2647772601e+11}
	for range 100_000 {
		n := rng.Int64N(maxExactInt)
		values = append(values, float64(n), float64(n/(rng.Int64N(1_000_000)+1)+1)*float64(pow10(rng.IntN(9))))
	}
	for _, v := range values {
		for _, f := range []float64{v, -v} {
			require.Equal(t, strconv.FormatFloat(f, 'g', -1, 64), string(appendTextFloat(nil, f)), "%v", f)
		}
	}
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// requireCanonicalIsAppendTextFloat requires a token textfloat.Canonical
// takes to be what appendTextFloat writes for the value it reads as, and
// one textfloat.Whole takes to be also a whole number, and reports whether
// Canonical took it. Whole takes nothing that Canonical does not.
func requireCanonicalIsAppendTextFloat(t testing.TB, token string) bool {
	t.Helper()
	canonical, whole := textfloat.Canonical(token), textfloat.Whole(token)
	if whole {
		require.True(t, canonical, "%q is taken by Whole and not by Canonical", token)
	}
	if !canonical {
		return false
	}
	f, err := strconv.ParseFloat(token, 64)
	require.NoError(t, err, "%q", token)
	require.Equal(t, token, string(appendTextFloat(nil, f)), "%q", token)
	if whole {
		require.Equal(t, f, math.Trunc(f), "%q is a whole number", token)
	}
	return true
}

// shortestDigits returns how many significant digits strconv's shortest
// format writes for f, and its decimal exponent.
func shortestDigits(f float64) (digits, exp int) {
	e := strconv.AppendFloat(nil, math.Abs(f), 'e', -1, 64) // d[.ddd]e±XX
	mant, ex, _ := strings.Cut(string(e), "e")
	exp, _ = strconv.Atoi(ex)
	return len(strings.Replace(mant, ".", "", 1)), exp
}

// TestCanonicalIsAppendTextFloat holds textfloat.Canonical, by which a
// repeat copies a pushed value's token into its line without reading it,
// to appendTextFloat: every token it takes is the text appendTextFloat
// writes for the number it reads as; it takes what appendTextFloat writes
// for every number of up to 15 significant digits with a decimal exponent
// from -307 to 307 (but -0); and Whole, which a repeat asks of a count,
// takes what it writes for every whole number below 1e15.
func TestCanonicalIsAppendTextFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tok := range canonicalEdges {
		requireCanonicalIsAppendTextFloat(t, tok)
	}
	taken, wholes := 0, 0
	requireTaken := func(f float64) {
		text := string(appendTextFloat(nil, f))
		if requireCanonicalIsAppendTextFloat(t, text) {
			taken++
			if textfloat.Whole(text) {
				wholes++
			}
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return
		}
		digits, exp := shortestDigits(f)
		if f != 0 && digits <= 15 && exp >= -307 && exp <= 307 {
			require.True(t, textfloat.Canonical(text), "%q (%v) not taken", text, f)
		}
		if math.Abs(f) < 1e15 && f == math.Trunc(f) && text != "-0" {
			require.True(t, textfloat.Whole(text), "%q (%v) not taken as a whole number", text, f)
		}
	}
	for range 100_000 {
		n := rng.Int64N(1e15)
		for _, f := range []float64{float64(n), -float64(n), float64(n % 1_000_000), float64(n) * float64(pow10(rng.IntN(4)))} {
			requireTaken(f)
		}
		// A decimal of 1 to 17 significant digits at any exponent, as a
		// client writes a ratio, a size or a time; and a float64 of any
		// bits.
		digits := 1 + rng.IntN(17)
		mant := rng.Int64N(pow10(digits))
		// Out of range, it reads as ±Inf or 0.
		f, _ := strconv.ParseFloat(strconv.FormatInt(mant, 10)+"e"+strconv.Itoa(rng.IntN(660)-340), 64)
		requireTaken(f)
		requireTaken(-f)
		requireTaken(math.Float64frombits(rng.Uint64()))
		// Near misses: a written value with a byte changed, dropped or
		// added.
		for _, text := range [][]byte{appendTextFloat(nil, float64(n)), appendTextFloat(nil, f)} {
			switch i := rng.IntN(len(text)); rng.IntN(3) {
			case 0:
				text[i] = "0123456789.e+-"[rng.IntN(14)]
			case 1:
				text = append(text[:i], text[i+1:]...)
			case 2:
				text = append(text[:i], append([]byte{"0.e+-"[rng.IntN(5)]}, text[i:]...)...)
			}
			requireCanonicalIsAppendTextFloat(t, string(text))
		}
	}
	require.Greater(t, wholes, 300_000)
	require.Greater(t, taken, wholes+100_000)
}

// canonicalEdges are tokens at the edges of textfloat.Canonical and
// textfloat.Whole.
var canonicalEdges = []string{
	"0", "-0", "00", "1", "-1", "07", "999999", "-999999", "1000000", "1e+06", "1.0e+06",
	"1.5e+06", "1.50e+06", "10e+06", "0e+06", "1e+6", "1e+006", "1e06", "1E+06", "1.e+06",
	"1.23456e+05", "1.234567e+06", "1.2345678e+06", "9.99999999999999e+14", "1e+15",
	"9.007199254740991e+15", "9.007199254740993e+15", "9.999999999999999e+15", "1e-06", "1.5",
	"-1.5e+06", "--1", "+1", "", "-", "e+06", "1e+", "NaN", "+Inf", "1_000", "0x10",
	"0.5", "-0.5", "0.50", "0.", "0.0", "-0.0", ".5", "0.0001", "0.00001", "0.00012345", "1e-05",
	"1e-04", "1.5e-05", "123456.5", "1234567.5", "1.2345675e+06", "100000.0", "12.50",
	"1.23456789012345", "1.234567890123456", "0.123456789012345", "0.1234567890123456",
	"1e+307", "9.99999999999999e+307", "1e+308", "1e-307", "1e-308", "5e-324", "1e+100",
	"1e+0100", "1e+1000", "1e-100", "2.2647772601e+11", "0.12292306222334741", "1.7e+09",
}

func FuzzCanonical(f *testing.F) {
	for _, tok := range canonicalEdges {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, token string) { requireCanonicalIsAppendTextFloat(t, token) })
}
