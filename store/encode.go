package store

import (
	"github.com/prometheus/common/model"
	"math"
	"slices"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers of io.prometheus.client.Metric and of the messages inside
// the common metric shapes.
const (
	fieldMetricLabel   protowire.Number = 1
	fieldMetricGauge   protowire.Number = 2
	fieldMetricCounter protowire.Number = 3
	fieldMetricUntyped protowire.Number = 5
	fieldLabelName     protowire.Number = 1
	fieldLabelValue    protowire.Number = 2
	fieldValue         protowire.Number = 1 // Gauge.value, Counter.value, Untyped.value
)

// metricEncoder encodes metrics as `metric` fields of a MetricFamily. Most
// pushed metrics are label pairs plus a gauge, counter or untyped value;
// those it writes directly, about four times faster than proto.Marshal and
// with the same bytes (encode_test.go compares them). Everything else goes
// through proto.Marshal.
type metricEncoder struct {
	sizes  []int  // scratch: encoded size of each metric
	simple []bool // scratch: whether each metric has the common shape
}

// size returns the encoded size of ms as `metric` fields and remembers each
// metric's size for appendTo.
func (e *metricEncoder) size(ms []*dto.Metric) int {
	e.sizes, e.simple = e.sizes[:0], e.simple[:0]
	n := 0
	for _, m := range ms {
		sz, ok := simpleSize(m)
		if !ok {
			sz = proto.Size(m)
		}
		e.sizes = append(e.sizes, sz)
		e.simple = append(e.simple, ok)
		n += protowire.SizeTag(metricField) + protowire.SizeVarint(uint64(sz)) + sz
	}
	return n
}

// appendTo appends ms as `metric` fields. size(ms) must have been called
// last.
func (e *metricEncoder) appendTo(b []byte, ms []*dto.Metric) ([]byte, error) {
	for i, m := range ms {
		b = protowire.AppendTag(b, metricField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(e.sizes[i]))
		if e.simple[i] {
			b = appendSimple(b, m)
			continue
		}
		var err error
		b, err = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// simpleValue returns the field number and the value message of a metric
// of the common shape, and whether m has that shape: label pairs and
// exactly one of gauge, counter (without exemplar or created timestamp) or
// untyped, no timestamp, no unknown fields anywhere.
func simpleValue(m *dto.Metric) (protowire.Number, *float64, bool) {
	if m.Summary != nil || m.Histogram != nil || m.TimestampMs != nil || len(m.ProtoReflect().GetUnknown()) > 0 {
		return 0, nil, false
	}
	switch {
	case m.Gauge != nil && m.Counter == nil && m.Untyped == nil:
		return fieldMetricGauge, m.Gauge.Value, len(m.Gauge.ProtoReflect().GetUnknown()) == 0
	case m.Counter != nil && m.Gauge == nil && m.Untyped == nil:
		c := m.Counter
		return fieldMetricCounter, c.Value, c.Exemplar == nil && c.CreatedTimestamp == nil && len(c.ProtoReflect().GetUnknown()) == 0
	case m.Untyped != nil && m.Gauge == nil && m.Counter == nil:
		return fieldMetricUntyped, m.Untyped.Value, len(m.Untyped.ProtoReflect().GetUnknown()) == 0
	}
	return 0, nil, false
}

func isSimple(m *dto.Metric) bool {
	if _, _, ok := simpleValue(m); !ok {
		return false
	}
	for _, lp := range m.Label {
		if lp == nil || len(lp.ProtoReflect().GetUnknown()) > 0 {
			return false
		}
	}
	return true
}

// simpleSize returns the encoded size of a simple metric.
func simpleSize(m *dto.Metric) (int, bool) {
	if !isSimple(m) {
		return 0, false
	}
	n := 0
	for _, lp := range m.Label {
		l := labelPairSize(lp)
		n += protowire.SizeTag(fieldMetricLabel) + protowire.SizeVarint(uint64(l)) + l
	}
	num, v, _ := simpleValue(m)
	return n + protowire.SizeTag(num) + 1 + valueSize(v), true
}

func labelPairSize(lp *dto.LabelPair) int {
	n := 0
	if lp.Name != nil {
		n += protowire.SizeTag(fieldLabelName) + protowire.SizeBytes(len(*lp.Name))
	}
	if lp.Value != nil {
		n += protowire.SizeTag(fieldLabelValue) + protowire.SizeBytes(len(*lp.Value))
	}
	return n
}

// valueSize is the size of a Gauge, Counter or Untyped message holding only
// v: tag and 8 bytes, or nothing.
func valueSize(v *float64) int {
	if v == nil {
		return 0
	}
	return protowire.SizeTag(fieldValue) + 8
}

// appendSimple appends a simple metric (without its own tag and length).
func appendSimple(b []byte, m *dto.Metric) []byte {
	for _, lp := range m.Label {
		b = appendLabelPair(b, lp)
	}
	num, v, _ := simpleValue(m)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(valueSize(v)))
	if v != nil {
		b = protowire.AppendTag(b, fieldValue, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(*v))
	}
	return b
}

// appendTextSamples appends the text 0.0.4 sample lines of a counter, gauge
// or untyped family, byte for byte what expfmt.MetricFamilyToText writes
// after its TYPE line (encode_test.go compares them), without expfmt's
// per-line name validation and pooled writers. Names must be legacy-valid
// (checkFamilyHeader and checkMetric make sure) and every metric must have
// the value of typ (checkMetric).
func appendTextSamples(b []byte, name string, typ dto.MetricType, ms []*dto.Metric) []byte {
	for _, m := range ms {
		b = roomForLine(b)
		b = appendSeriesKey(b, name, m.Label)
		b = append(b, ' ')
		b = appendTextFloat(b, simpleFloat(typ, m))
		b = append(b, '\n')
	}
	return b
}

// roomForLine makes room in b for a line of the usual size, doubling b
// when it is full. Rendering appends line by line, and append alone grows
// a large buffer by a quarter at a time: the copies a 16 MB push's lines
// left behind added up to five times their size, all of it allocated
// while the push is applied (and charged to the push memory budget).
func roomForLine(b []byte) []byte {
	if cap(b)-len(b) < lineRoom {
		return slices.Grow(b, len(b)+lineRoom)
	}
	return b
}

// lineRoom is the room roomForLine keeps: more than most lines take.
const lineRoom = 512

// appendOwnText appends an own family (one of the gateway's, gathered for
// the scrape) as expfmt.MetricFamilyToText writes it. It covers what
// registries gather: legacy names, values present, no timestamps; for
// anything else it reports false with b as it was, and expfmt renders.
func appendOwnText(b []byte, mf *dto.MetricFamily) ([]byte, bool) {
	name, typ := mf.GetName(), mf.GetType()
	if len(mf.Metric) == 0 || hasUTF8Names(name, mf.Metric) {
		return b, false
	}
	for _, m := range mf.Metric {
		if m.TimestampMs != nil || !hasValueOf(typ, m) {
			return b, false // expfmt writes the timestamp, or refuses the metric
		}
	}
	start := len(b)
	b = appendTextHeader(b, name, typ, mf.GetHelp(), mf.Help != nil)
	if hasSimpleText(typ) {
		return appendTextSamples(b, name, typ, mf.Metric), true
	}
	b, ok := appendComplexSamples(b, name, typ, mf.Metric)
	if !ok {
		return b[:start], false
	}
	return b, true
}

// hasSimpleText reports whether appendTextSamples can render typ.
func hasSimpleText(typ dto.MetricType) bool {
	return typ == dto.MetricType_COUNTER || typ == dto.MetricType_GAUGE || typ == dto.MetricType_UNTYPED
}

func simpleFloat(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.Counter.GetValue()
	case dto.MetricType_GAUGE:
		return m.Gauge.GetValue()
	}
	return m.Untyped.GetValue()
}

// appendTextFloat formats a sample value as expfmt does.
func appendTextFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, "-1"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f >= -maxPlainInt && f <= maxPlainInt && f == math.Trunc(f):
		// Counts and sizes are often whole numbers; 'g' writes those
		// below 1e6 as plain integers, and AppendInt is much cheaper
		// than finding the shortest float representation.
		return strconv.AppendInt(b, int64(f), 10)
	case f > -maxExactInt && f < maxExactInt && f == math.Trunc(f):
		return appendWholeE(b, int64(f))
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// maxExactInt is 2^53: below it every whole number is a float64 of its
// own.
const maxExactInt = 1 << 53

// appendWholeE appends i, a whole number from 1e6 to 2^53 (either sign),
// as strconv's shortest 'g' format writes it: its digits without the
// trailing zeros, as d.ddd, then e+ and the exponent in two digits. Below
// 2^53 two whole numbers are two floats, so no shorter digits read back
// as the same float; and from 1e6 on 'g' takes the exponent form. Byte
// counts and timestamps in milliseconds are such numbers.
func appendWholeE(b []byte, i int64) []byte {
	if i < 0 {
		b = append(b, '-')
		i = -i
	}
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], i, 10)
	exp := len(d) - 1
	for len(d) > 1 && d[len(d)-1] == '0' {
		d = d[:len(d)-1]
	}
	b = append(b, d[0])
	if len(d) > 1 {
		b = append(b, '.')
		b = append(b, d[1:]...)
	}
	return append(b, 'e', '+', byte('0'+exp/10), byte('0'+exp%10))
}

// maxPlainInt is the largest whole number strconv's shortest 'g' format
// writes without an exponent: from 1e6 on it switches to 1e+06.
const maxPlainInt = 999_999

// appendComplexSamples appends the text lines of summaries and histograms
// with legacy names as expfmt writes them: the quantiles, or the buckets
// (and a +Inf bucket when none is given), then _sum and _count. It
// reports false, leaving the rendering to expfmt, for a metric with a
// timestamp or without its summary or histogram (the checks refuse both
// before rendering).
func appendComplexSamples(b []byte, name string, typ dto.MetricType, ms []*dto.Metric) ([]byte, bool) {
	b = slices.Grow(b, complexTextSize(name, ms))
	for _, m := range ms {
		if m.TimestampMs != nil {
			return b, false
		}
		switch typ {
		case dto.MetricType_SUMMARY:
			s := m.Summary
			if s == nil {
				return b, false
			}
			for _, q := range s.Quantile {
				b = appendSample(b, name, "", m.Label, model.QuantileLabel, q.GetQuantile(), q.GetValue())
			}
			b = appendSample(b, name, "_sum", m.Label, "", 0, s.GetSampleSum())
			b = appendSample(b, name, "_count", m.Label, "", 0, float64(s.GetSampleCount()))
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.Histogram
			if h == nil {
				return b, false
			}
			infSeen := false
			for _, bk := range h.Bucket {
				v := bk.GetCumulativeCountFloat()
				if v == 0 {
					v = float64(bk.GetCumulativeCount())
				}
				b = appendSample(b, name, "_bucket", m.Label, model.BucketLabel, bk.GetUpperBound(), v)
				infSeen = infSeen || math.IsInf(bk.GetUpperBound(), +1)
			}
			count := h.GetSampleCountFloat()
			if count == 0 {
				count = float64(h.GetSampleCount())
			}
			if !infSeen {
				b = appendSample(b, name, "_bucket", m.Label, model.BucketLabel, math.Inf(+1), count)
			}
			b = appendSample(b, name, "_sum", m.Label, "", 0, h.GetSampleSum())
			b = appendSample(b, name, "_count", m.Label, "", 0, count)
		default:
			return b, false
		}
	}
	return b, true
}

// complexTextSize estimates the text of summaries or histograms ms from
// above, so that their buffer grows once (append would grow a large one
// by a quarter at a time).
func complexTextSize(name string, ms []*dto.Metric) int {
	n := 0
	for _, m := range ms {
		line := len(name) + len("_bucket{le=\"\"} ") + 2*24 + 1
		for _, lp := range m.Label {
			line += len(lp.GetName()) + 2*len(lp.GetValue()) + 4
		}
		lines := 3 + len(m.GetHistogram().GetBucket()) + len(m.GetSummary().GetQuantile())
		n += lines * line
	}
	return n
}

// appendSample appends one text line: name and suffix, the label pairs and
// the extra label (le or quantile, when extra is not ""), the value.
func appendSample(b []byte, name, suffix string, ls []*dto.LabelPair, extra string, extraValue, value float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(ls) > 0 || extra != "" {
		sep := byte('{')
		for _, lp := range ls {
			b = append(b, sep)
			sep = ','
			b = append(b, lp.GetName()...)
			b = append(b, '=', '"')
			b = appendEscaped(b, lp.GetValue(), true)
			b = append(b, '"')
		}
		if extra != "" {
			b = append(b, sep)
			b = append(b, extra...)
			b = append(b, '=', '"')
			b = appendTextFloat(b, extraValue)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendTextFloat(b, value)
	return append(b, '\n')
}
