package ingest

import (
	"encoding/binary"
	"math"
	"unsafe"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DecodeFamily decodes one encoded MetricFamily: a message of a protobuf
// push, or a family of a group another peer sends. Most families are
// counters, gauges and untyped series with labels: those are decoded here
// field by field, at a fraction of the cost of the generic decoder.
// Anything else (histograms, summaries, exemplars, created timestamps, a
// field or wire type this code does not expect) goes to proto.Unmarshal,
// so the result is always what proto.Unmarshal gives (FuzzDecodeFamily).
// Every string is copied out of b.
func DecodeFamily(b []byte) (*dto.MetricFamily, error) {
	if mf, ok := decodeSimpleFamily(b); ok {
		return mf, nil
	}
	mf := &dto.MetricFamily{}
	if err := proto.Unmarshal(b, mf); err != nil {
		return nil, err
	}
	return mf, nil
}

// Field numbers of io.prometheus.client's MetricFamily, Metric, LabelPair
// and of the value of Gauge, Counter and Untyped (metrics.proto).
const (
	mfName, mfHelp, mfType, mfMetric, mfUnit = 1, 2, 3, 4, 5
	mLabel, mGauge, mCounter, mUntyped, mTS  = 1, 2, 3, 5, 6
	mHistogram                               = 7
	lpName, lpValue                          = 1, 2
	valueField                               = 1
)

// field is one field of a message.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   []byte // of a bytes field
	x   uint64 // of a varint or fixed64 field
}

// nextField reads the field at the start of b and returns the rest; ok is false
// for a malformed field or a wire type other than bytes, varint and
// fixed64.
func nextField(b []byte) (f field, rest []byte, ok bool) {
	if len(b) >= 2 && b[0] < 0x80 && b[0] >= 1<<3 {
		// A one-byte tag of a field from 1 to 15, which every field of
		// the metric messages is, and mostly a one-byte value or length.
		f.num, f.typ = protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
		switch {
		case f.typ == protowire.BytesType && b[1] < 0x80:
			if n := int(b[1]); n <= len(b)-2 {
				f.v = b[2 : 2+n]
				return f, b[2+n:], true
			}
			return f, nil, false
		case f.typ == protowire.VarintType && b[1] < 0x80:
			f.x = uint64(b[1])
			return f, b[2:], true
		case f.typ == protowire.Fixed64Type && len(b) >= 9:
			f.x = binary.LittleEndian.Uint64(b[1:9])
			return f, b[9:], true
		}
	}
	return consumeField(b)
}

// consumeField is nextField for any tag and length, read by protowire.
func consumeField(b []byte) (f field, rest []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return f, nil, false
	}
	b = b[n:]
	f.num, f.typ = num, typ
	switch typ {
	case protowire.BytesType:
		f.v, n = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		f.x, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.x, n = protowire.ConsumeFixed64(b)
	default:
		return f, nil, false
	}
	if n < 0 {
		return f, nil, false
	}
	return f, b[n:], true
}

// decodeSimpleFamily decodes b if every field of it is one it expects.
// Label names and values are substrings of one copy of b; the family's
// name, HELP and unit, which the store keeps, are copies of their own.
func decodeSimpleFamily(b []byte) (*dto.MetricFamily, bool) {
	d := &protoSlabs{}
	d.families.reserve(1) // a chunk of one, not of a push's worth
	d.types.reserve(1)
	return d.family(b, func() string { return string(b) }, 0)
}

// family decodes the MetricFamily b if every field of it is one the fast
// path expects. b is at offset off of the string d.s, which text returns
// the first time it is needed (label strings are cut from it).
func (d *protoSlabs) family(b []byte, text func() string, off int) (*dto.MetricFamily, bool) {
	mf := d.families.new()
	var c protoCounts
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok {
			return nil, false
		}
		rest = r
		switch {
		case f.num == mfName && f.typ == protowire.BytesType:
			mf.Name = d.text(f.v)
		case f.num == mfHelp && f.typ == protowire.BytesType:
			mf.Help = d.text(f.v)
		case f.num == mfUnit && f.typ == protowire.BytesType:
			mf.Unit = d.text(f.v)
		case f.num == mfType && f.typ == protowire.VarintType:
			if mf.Type == nil {
				mf.Type = d.types.new()
			}
			*mf.Type = dto.MetricType(int32(f.x))
		case f.num == mfMetric && f.typ == protowire.BytesType:
			if !countMetric(f.v, &c) {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	if c.metrics == 0 {
		return mf, true
	}
	if d.s == "" {
		d.s = text()
	}
	d.reserve(c)
	for rest := b; len(rest) > 0; {
		f, r, _ := nextField(rest) // read once above
		rest = r
		if f.num != mfMetric {
			continue
		}
		m := d.metrics.new()
		if !d.metric(f.v, off+len(b)-len(r)-len(f.v), m) {
			return nil, false
		}
		mf.Metric = d.metricPtrs.add(mf.Metric, m)
	}
	return mf, true
}

// text returns a pointer, from the slab, to a copy of v: the interned
// one in a pooled decoder.
func (d *protoSlabs) text(v []byte) *string {
	s := d.strs.new()
	*s = d.names.get(unsafe.String(unsafe.SliceData(v), len(v)))
	return s
}

// countFamily counts what the MetricFamily b takes from the slabs, and
// reports whether the fast path can decode it.
func countFamily(b []byte) (protoCounts, bool) {
	c := protoCounts{families: 1}
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok {
			return c, false
		}
		rest = r
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case mfName, mfHelp, mfUnit:
			c.texts++
		case mfMetric:
			if !countMetric(f.v, &c) {
				return c, false
			}
		}
	}
	return c, true
}

// reserve makes room in the slabs for what c counts: a slab that has not
// that much left starts a chunk of at least that size.
func (d *protoSlabs) reserve(c protoCounts) {
	d.families.reserve(c.families)
	d.types.reserve(c.families)
	d.metrics.reserve(c.metrics)
	d.metricPtrs.reserve(c.metrics)
	d.pairs.reserve(c.labels)
	d.strs.reserve(2*c.labels + c.texts)
	d.floats.reserve(c.gauges + c.counters + c.untyped + 2*c.histograms + 2*c.buckets)
	d.uints.reserve(c.histograms + c.buckets)
	d.buckets.reserve(c.buckets)
	d.bucketPtrs.reserve(c.buckets)
	d.gauges.reserve(c.gauges)
	d.counters.reserve(c.counters)
	d.untyped.reserve(c.untyped)
	d.histograms.reserve(c.histograms)
	d.stamps.reserve(c.counters + c.histograms)
	if cap(d.labels)-len(d.labels) < c.labels {
		d.labels = make([]*dto.LabelPair, 0, max(c.labels, 2*cap(d.labels)))
	}
}

// protoSlabs holds what decodeSimpleFamily carves a family and its
// metrics from, and the copy of the message its label strings are cut from.
type protoSlabs struct {
	clientSlabs
	stamps slab[timestamppb.Timestamp]
}

// protoCounts counts what families take from the slabs: the families
// (and their types), their names, HELP texts and units, and what their
// metrics take.
type protoCounts struct {
	families, texts                       int
	metrics, labels, buckets              int
	gauges, counters, untyped, histograms int
}

func (c *protoCounts) add(o protoCounts) {
	c.families += o.families
	c.texts += o.texts
	c.metrics += o.metrics
	c.labels += o.labels
	c.buckets += o.buckets
	c.gauges += o.gauges
	c.counters += o.counters
	c.untyped += o.untyped
	c.histograms += o.histograms
}

// countMetric reports whether a Metric has only the fields decodeSimpleFamily
// decodes at its level (labels, a gauge, counter, untyped or histogram
// value, a timestamp), and adds what it takes to c.
func countMetric(b []byte, c *protoCounts) bool {
	c.metrics++
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok || (f.num != mTS && f.typ != protowire.BytesType) {
			return false
		}
		rest = r
		switch f.num {
		case mLabel:
			c.labels++
		case mTS:
			if f.typ != protowire.VarintType {
				return false
			}
		case mGauge:
			c.gauges++
		case mCounter:
			c.counters++
		case mUntyped:
			c.untyped++
		case mHistogram:
			c.histograms++
			for h := f.v; len(h) > 0; {
				g, r, ok := nextField(h)
				if !ok {
					return false
				}
				h = r
				if g.num == hBucket {
					c.buckets++
				}
			}
		default:
			return false
		}
	}
	return true
}

// metric decodes a Metric with labels, one gauge, counter or untyped
// value, and a timestamp into m; b starts at offset off of d.s.
func (d *protoSlabs) metric(b []byte, off int, m *dto.Metric) bool {
	start := len(d.labels)
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok {
			return false
		}
		rest = r
		if f.num == mTS && f.typ == protowire.VarintType {
			m.TimestampMs = proto.Int64(int64(f.x))
			continue
		}
		if f.typ != protowire.BytesType {
			return false
		}
		switch f.num {
		case mLabel:
			lp := d.pairs.new()
			if !d.label(f.v, off+len(b)-len(r)-len(f.v), lp) {
				return false
			}
			d.labels = append(d.labels, lp)
			continue
		case mGauge, mCounter, mUntyped, mHistogram:
		default:
			return false
		}
		if m.Gauge != nil || m.Counter != nil || m.Untyped != nil || m.Histogram != nil {
			return false // a second value: proto.Unmarshal merges them
		}
		switch f.num {
		case mGauge, mUntyped:
			val, ok := simpleValue(f.v, &d.floats)
			if !ok {
				return false
			}
			if f.num == mGauge {
				m.Gauge = d.gauges.new()
				m.Gauge.Value = val
			} else {
				m.Untyped = d.untyped.new()
				m.Untyped.Value = val
			}
		case mCounter:
			m.Counter = d.counters.new()
			if !d.counter(f.v, m.Counter) {
				return false
			}
		default:
			m.Histogram = d.histograms.new()
			if !d.histogram(f.v, m.Histogram) {
				return false
			}
		}
	}
	if len(d.labels) > start {
		m.Label = d.labels[start:len(d.labels):len(d.labels)]
	}
	return true
}

// label decodes a LabelPair into lp; b starts at offset off of d.s.
func (d *protoSlabs) label(b []byte, off int, lp *dto.LabelPair) bool {
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok || f.typ != protowire.BytesType {
			return false
		}
		end := off + len(b) - len(r)
		rest = r
		str := d.strs.new()
		*str = d.s[end-len(f.v) : end]
		switch f.num {
		case lpName:
			lp.Name = str
		case lpValue:
			lp.Value = str
		default:
			return false
		}
	}
	return true
}

// simpleValue decodes a Gauge, Counter or Untyped message that holds at
// most its value (a pointer field: set when written, even as 0), the
// value taken from floats.
func simpleValue(b []byte, floats *slab[float64]) (*float64, bool) {
	var val *float64
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok || f.num != valueField || f.typ != protowire.Fixed64Type {
			return nil, false
		}
		rest = r
		if val == nil {
			val = floats.new()
		}
		*val = math.Float64frombits(f.x)
	}
	return val, true
}

// Field numbers of Counter, Histogram, Bucket and Timestamp that the fast
// path decodes (metrics.proto, timestamp.proto).
const (
	cValue, cCreated                         = 1, 3
	hCount, hSum, hBucket, hCountF, hCreated = 1, 2, 3, 4, 15
	bCount, bUpper, bCountF                  = 1, 2, 4
	tsSeconds, tsNanos                       = 1, 2
)

// counter decodes a Counter with a value and a created timestamp into c.
func (d *protoSlabs) counter(b []byte, c *dto.Counter) bool {
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok {
			return false
		}
		rest = r
		switch {
		case f.num == cValue && f.typ == protowire.Fixed64Type:
			c.Value = d.setFloat(c.Value, f.x)
		case f.num == cCreated && f.typ == protowire.BytesType && c.CreatedTimestamp == nil:
			c.CreatedTimestamp = d.stamps.new()
			if !timestamp(f.v, c.CreatedTimestamp) {
				return false
			}
		default:
			return false // an exemplar, a second timestamp (merged), anything else
		}
	}
	return true
}

// histogram decodes a classic Histogram (counts, sum, buckets, a created
// timestamp; no native histogram or exemplar fields) into h.
func (d *protoSlabs) histogram(b []byte, h *dto.Histogram) bool {
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok {
			return false
		}
		rest = r
		switch {
		case f.num == hCount && f.typ == protowire.VarintType:
			h.SampleCount = d.setUint(h.SampleCount, f.x)
		case f.num == hCountF && f.typ == protowire.Fixed64Type:
			h.SampleCountFloat = d.setFloat(h.SampleCountFloat, f.x)
		case f.num == hSum && f.typ == protowire.Fixed64Type:
			h.SampleSum = d.setFloat(h.SampleSum, f.x)
		case f.num == hBucket && f.typ == protowire.BytesType:
			bk := d.buckets.new()
			if !d.bucket(f.v, bk) {
				return false
			}
			h.Bucket = d.bucketPtrs.add(h.Bucket, bk)
		case f.num == hCreated && f.typ == protowire.BytesType && h.CreatedTimestamp == nil:
			h.CreatedTimestamp = d.stamps.new()
			if !timestamp(f.v, h.CreatedTimestamp) {
				return false
			}
		default:
			return false // native histogram fields, exemplars, anything else
		}
	}
	return true
}

// bucket decodes a Bucket without an exemplar into bk.
func (d *protoSlabs) bucket(b []byte, bk *dto.Bucket) bool {
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok {
			return false
		}
		rest = r
		switch {
		case f.num == bCount && f.typ == protowire.VarintType:
			bk.CumulativeCount = d.setUint(bk.CumulativeCount, f.x)
		case f.num == bCountF && f.typ == protowire.Fixed64Type:
			bk.CumulativeCountFloat = d.setFloat(bk.CumulativeCountFloat, f.x)
		case f.num == bUpper && f.typ == protowire.Fixed64Type:
			bk.UpperBound = d.setFloat(bk.UpperBound, f.x)
		default:
			return false
		}
	}
	return true
}

// timestamp decodes a google.protobuf.Timestamp into ts.
func timestamp(b []byte, ts *timestamppb.Timestamp) bool {
	for rest := b; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok || f.typ != protowire.VarintType {
			return false
		}
		rest = r
		switch f.num {
		case tsSeconds:
			ts.Seconds = int64(f.x)
		case tsNanos:
			ts.Nanos = int32(f.x) //nolint:gosec // truncated as proto.Unmarshal does
		default:
			return false
		}
	}
	return true
}

// setFloat stores the fixed64 x as a float in p, or in a new one from the
// slab: a repeated scalar field keeps its last value, as in
// proto.Unmarshal.
func (d *protoSlabs) setFloat(p *float64, x uint64) *float64 {
	if p == nil {
		p = d.floats.new()
	}
	*p = math.Float64frombits(x)
	return p
}

func (d *protoSlabs) setUint(p *uint64, x uint64) *uint64 {
	if p == nil {
		p = d.uints.new()
	}
	*p = x
	return p
}

// release zeroes what d handed out and puts it back in protoDecoders,
// unless it holds more than maxPooledBytes. With poisonReleased (tests),
// it poisons what it would reuse instead.
func (d *protoSlabs) release() {
	if poisonReleased.Load() {
		d.poison()
		return
	}
	d.mapped = max(d.mapped, len(d.fams)) // a cleared map keeps its room
	if d.footprint() > maxPooledBytes {
		return
	}
	d.reuseSlabs()
	d.stamps.reuse()
	protoDecoders.Put(d)
}

// footprint is the memory d would keep in its pool.
func (d *protoSlabs) footprint() int {
	return d.slabBytes() + d.stamps.bytes()
}
