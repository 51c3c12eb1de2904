package ingest

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// The protobuf side of repeated pushes (repeat.go): a delimited body is
// read field by field. Every field but the values goes into the shape as
// its tag and, for strings, created timestamps, bucket bounds and
// quantiles, its bytes; the lengths of the messages do not (a count that
// grows a byte grows every length around it), but where each message
// starts and ends does. The values come out in the order of the text
// lines the store keeps: per metric, the quantiles or the buckets (and a
// +Inf bucket holding the count when the histogram has none, as the text
// adds one), then _sum and _count. Exemplars, timestamps, native and float
// histograms, unknown fields and a field given twice send the push the
// full way.

// Field numbers of metrics.proto besides the ones protofamily.go names.
// A Histogram's count, sum and buckets are numbered as a Summary's count,
// sum and quantiles.
const (
	mSummary                                 = 4
	sumCount, sumSum, sumQuantile, sumCreate = 1, 2, 3, 4
	qQuantile, qValue                        = 1, 2
)

// Kinds of lines, for the series scanProto writes when asked.
const (
	lineValue = iota
	lineQuantile
	lineBucket
	lineSum
	lineCount
)

// protoMetric is what scanProto keeps of a metric until its end.
type protoMetric struct {
	labels    [][2][]byte // name, value
	quantiles [][2]float64
	buckets   [][2]float64 // bound, count
	// pairSlots are the slots (repeatScan.slots) of the quantiles' or
	// buckets' values, sumSlot and countSlot those of _sum and _count.
	pairSlots          []int32
	sumSlot, countSlot int32
	sum                float64
	count              uint64
	hasSum             bool
	hasCount           bool
}

// scanProto is scan for a delimited protobuf body. With series, it also
// writes each line's series as the text would (name, labels in the order
// given, then le or quantile) into sc.series, for LearnRepeat.
func (sc *repeatScan) scanProto(body []byte, series bool) bool {
	sc.values, sc.texts, sc.series, sc.seriesBuf, sc.seriesEnds = sc.values[:0], sc.texts[:0], sc.series[:0], sc.seriesBuf[:0], sc.seriesEnds[:0]
	sc.shapeBuf, sc.slots, sc.order, sc.base, sc.badSlots = sc.shapeBuf[:0], sc.slots[:0], sc.order[:0], body, false
	for rest := body; len(rest) > 0; {
		size, n := protowire.ConsumeVarint(rest)
		if n < 0 || size > uint64(len(rest)-n) {
			return false
		}
		sc.mark(markFamily)
		if !sc.protoFamily(rest[n:n+int(size)], series) || sc.tooLarge() {
			return false
		}
		rest = rest[n+int(size):]
	}
	if series {
		// The series point into seriesBuf, which is complete only now.
		off := 0
		for _, end := range sc.seriesEnds {
			sc.series = append(sc.series, sc.seriesBuf[off:end])
			off = end
		}
	}
	sc.shape = maphash.Bytes(repeatSeed, sc.shapeBuf)
	return len(sc.values) > 0
}

// The shape of a protobuf body is written to shapeBuf and hashed once: a
// byte per tag (field numbers up to 31, so from 8 to 255), a mark (below
// 8, which no tag is) where a message starts or ends, four bytes of
// length before a string's bytes, eight for a number that is not a value.
// Read from the start, the bytes parse in one way only.
const (
	markFamily = 1 + iota
	markMetric
	markEnd
	markOpen
	markClose
)

// mark puts a mark into the shape.
func (sc *repeatScan) mark(c byte) { sc.shapeBuf = append(sc.shapeBuf, c) }

// tag puts a field's number and type, at most 31 and 7, into the shape.
func (sc *repeatScan) tag(f field) {
	sc.shapeBuf = append(sc.shapeBuf, byte(f.num)<<3|byte(f.typ)) //nolint:gosec // checked by the callers
}

// bytesOf puts a bytes field's length and bytes into the shape.
func (sc *repeatScan) bytesOf(v []byte) {
	sc.shapeBuf = binary.LittleEndian.AppendUint32(sc.shapeBuf, uint32(len(v))) //nolint:gosec // a body is far below 4 GiB
	sc.shapeBuf = append(sc.shapeBuf, v...)
}

// word puts a varint or fixed64 that is not a value into the shape.
func (sc *repeatScan) word(x uint64) {
	sc.shapeBuf = binary.LittleEndian.AppendUint64(sc.shapeBuf, x)
}

func (sc *repeatScan) protoFamily(msg []byte, series bool) bool {
	var name []byte
	var seen uint32
	for len(msg) > 0 {
		f, rest, ok := nextField(msg)
		if !ok || f.num > 31 {
			return false
		}
		msg = rest
		if f.num != mfMetric {
			if seen&(1<<f.num) != 0 {
				return false
			}
			seen |= 1 << f.num
		}
		sc.tag(f)
		switch {
		case (f.num == mfName || f.num == mfHelp || f.num == mfUnit) && f.typ == protowire.BytesType:
			sc.bytesOf(f.v)
			if f.num == mfName {
				name = f.v
			}
		case f.num == mfType && f.typ == protowire.VarintType:
			sc.word(f.x)
		case f.num == mfMetric && f.typ == protowire.BytesType:
			if name == nil {
				return false // the text needs the name first
			}
			sc.mark(markMetric)
			if !sc.protoMetric(f.v, name, series) {
				return false
			}
			sc.mark(markEnd)
		default:
			return false
		}
	}
	return true
}

func (sc *repeatScan) protoMetric(msg, name []byte, series bool) bool {
	if sc.tooLarge() {
		return false
	}
	m := &sc.metric
	m.labels, m.quantiles, m.buckets, m.pairSlots = m.labels[:0], m.quantiles[:0], m.buckets[:0], m.pairSlots[:0]
	m.hasSum, m.hasCount = false, false
	var seen uint32
	simple := false
	for len(msg) > 0 {
		f, rest, ok := nextField(msg)
		if !ok || f.typ != protowire.BytesType || f.num > 31 {
			return false // a timestamp (6) among others
		}
		msg = rest
		if f.num != mLabel {
			if seen != 0 {
				return false // one value message, once
			}
			seen |= 1 << f.num
		}
		sc.tag(f)
		switch f.num {
		case mLabel:
			ln, lv, ok := labelPair(f.v)
			if !ok {
				return false
			}
			sc.bytesOf(ln)
			sc.bytesOf(lv)
			m.labels = append(m.labels, [2][]byte{ln, lv})
		case mGauge, mCounter, mUntyped:
			sc.mark(markOpen)
			if !sc.protoSimple(f.v, f.num == mCounter) {
				return false
			}
			sc.mark(markClose)
			simple = true
		case mSummary:
			sc.mark(markOpen)
			if !sc.protoComplex(f.v, sumCreate, qQuantile, qValue, protowire.Fixed64Type, &m.quantiles) {
				return false
			}
			sc.mark(markClose)
		case mHistogram:
			sc.mark(markOpen)
			if !sc.protoComplex(f.v, hCreated, bUpper, bCount, protowire.VarintType, &m.buckets) {
				return false
			}
			sc.mark(markClose)
		default:
			return false
		}
	}
	switch {
	case seen == 0:
		return false
	case simple:
		if series {
			sc.addSeries(name, "", lineValue, 0)
		}
		return true
	case seen&(1<<mSummary) != 0:
		if !m.hasSum || !m.hasCount {
			return false
		}
		for i, q := range m.quantiles {
			sc.value(q[1], m.pairSlots[i])
			if series {
				sc.addSeries(name, "", lineQuantile, q[0])
			}
		}
	default:
		if !m.hasSum || !m.hasCount {
			return false
		}
		inf := false
		for i, b := range m.buckets {
			sc.value(b[1], m.pairSlots[i])
			inf = inf || math.IsInf(b[0], 1)
			if series {
				sc.addSeries(name, "_bucket", lineBucket, b[0])
			}
		}
		if !inf {
			sc.value(float64(m.count), m.countSlot)
			if series {
				sc.addSeries(name, "_bucket", lineBucket, math.Inf(1))
			}
		}
	}
	sc.value(m.sum, m.sumSlot)
	sc.value(float64(m.count), m.countSlot)
	if series {
		sc.addSeries(name, "_sum", lineSum, 0)
		sc.addSeries(name, "_count", lineCount, 0)
	}
	return true
}

// labelPair reads a LabelPair message.
func labelPair(msg []byte) (name, value []byte, ok bool) {
	var seen uint32
	for len(msg) > 0 {
		f, rest, ok := nextField(msg)
		if !ok || f.typ != protowire.BytesType || (f.num != lpName && f.num != lpValue) || seen&(1<<f.num) != 0 {
			return nil, nil, false
		}
		seen |= 1 << f.num
		msg = rest
		if f.num == lpName {
			name = f.v
		} else {
			value = f.v
		}
	}
	return name, value, name != nil && value != nil
}

// protoSimple reads a Gauge, Counter or Untyped message: its value, and a
// counter's created timestamp.
func (sc *repeatScan) protoSimple(msg []byte, counter bool) bool {
	var seen uint32
	for len(msg) > 0 {
		f, rest, ok := nextField(msg)
		if !ok || f.num > 31 || seen&(1<<f.num) != 0 {
			return false
		}
		seen |= 1 << f.num
		msg = rest
		sc.tag(f)
		switch {
		case f.num == valueField && f.typ == protowire.Fixed64Type:
			sc.value(math.Float64frombits(f.x), sc.slot(rest, false))
		case counter && f.num == cCreated && f.typ == protowire.BytesType:
			sc.bytesOf(f.v)
		default:
			return false // an exemplar among others
		}
	}
	return seen&(1<<valueField) != 0
}

// protoComplex reads a Summary or a Histogram, which share their field
// numbers but for the created timestamp: a whole count up to 2^53 (1),
// the sum (2), and quantiles or buckets (3), read by protoPair with key
// and value and kept in pairs.
func (sc *repeatScan) protoComplex(msg []byte, created, key, value protowire.Number, valueType protowire.Type, pairs *[][2]float64) bool {
	m := &sc.metric
	var seen uint32
	for len(msg) > 0 {
		f, rest, ok := nextField(msg)
		if !ok || f.num > 31 || (f.num != sumQuantile && seen&(1<<f.num) != 0) {
			return false
		}
		seen |= 1 << f.num
		msg = rest
		sc.tag(f)
		switch {
		case f.num == sumCount && f.typ == protowire.VarintType && f.x <= maxExactCount:
			m.count, m.hasCount, m.countSlot = f.x, true, sc.slot(rest, true)
		case f.num == sumSum && f.typ == protowire.Fixed64Type:
			m.sum, m.hasSum, m.sumSlot = math.Float64frombits(f.x), true, sc.slot(rest, false)
		case f.num == sumQuantile && f.typ == protowire.BytesType:
			sc.mark(markOpen)
			k, v, slot, ok := sc.protoPair(f.v, key, value, valueType)
			sc.mark(markClose)
			if !ok {
				return false
			}
			*pairs = append(*pairs, [2]float64{k, v})
			m.pairSlots = append(m.pairSlots, slot)
		case f.num == created && f.typ == protowire.BytesType:
			sc.bytesOf(f.v)
		default:
			return false // float counts, native buckets, exemplars
		}
	}
	return true
}

// protoPair reads a Quantile or Bucket message: the fixed64 field key, a
// part of the shape, and the field value of type valueType (a whole count
// up to 2^53 when it is a varint), a value, in the slot it returns.
func (sc *repeatScan) protoPair(msg []byte, key, value protowire.Number, valueType protowire.Type) (k, v float64, slot int32, ok bool) {
	var seen uint32
	for len(msg) > 0 {
		f, rest, ok := nextField(msg)
		if !ok || (f.num != key && f.num != value) || seen&(1<<f.num) != 0 {
			return 0, 0, 0, false
		}
		seen |= 1 << f.num
		msg = rest
		sc.tag(f)
		switch {
		case f.num == key && f.typ == protowire.Fixed64Type:
			k = math.Float64frombits(f.x)
			sc.word(f.x)
		case f.num == value && f.typ == valueType && valueType == protowire.Fixed64Type:
			v, slot = math.Float64frombits(f.x), sc.slot(rest, false)
		case f.num == value && f.typ == valueType && f.x <= maxExactCount:
			v, slot = float64(f.x), sc.slot(rest, true)
		default:
			return 0, 0, 0, false
		}
	}
	return k, v, slot, seen == 1<<key|1<<value
}

// maxExactCount is the largest count the text carries exactly.
const maxExactCount = 1 << 53

// addSeries writes the series of the metric in sc.metric's line of kind
// kind as the text writes it: name and suffix, the labels in the order
// given, then le or quantile with the value extra.
func (sc *repeatScan) addSeries(name []byte, suffix string, kind int, extra float64) {
	b := append(sc.seriesBuf, name...)
	b = append(b, suffix...)
	labels := sc.metric.labels
	if len(labels) > 0 || kind == lineQuantile || kind == lineBucket {
		sep := byte('{')
		for _, lp := range labels {
			b = append(b, sep)
			sep = ','
			b = append(b, lp[0]...)
			b = append(b, '=', '"')
			b = appendLabelValue(b, lp[1])
			b = append(b, '"')
		}
		switch kind {
		case lineQuantile:
			b = append(append(b, sep), `quantile="`...)
			b = append(appendFloatText(b, extra), '"')
		case lineBucket:
			b = append(append(b, sep), `le="`...)
			b = append(appendFloatText(b, extra), '"')
		}
		b = append(b, '}')
	}
	sc.seriesBuf = b
	sc.seriesEnds = append(sc.seriesEnds, len(b))
}

// appendLabelValue appends v escaped as the text escapes label values.
func appendLabelValue(b, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloatText appends f as the text writes an le or quantile.
func appendFloatText(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
