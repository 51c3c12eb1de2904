package cluster

import (
	"math"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// decodeFamily decodes a MetricFamily as the peer protocol carries it.
// Copies of groups are the bulk of what peers send each other, and most
// families are counters, gauges and untyped series with labels: those are
// decoded here field by field, at a fraction of the cost of the generic
// decoder. Anything else (histograms, summaries, exemplars, created
// timestamps, a field or wire type this code does not expect) goes to
// proto.Unmarshal, so the result is always what proto.Unmarshal gives
// (FuzzDecodeFamily).
func decodeFamily(b []byte) (*dto.MetricFamily, error) {
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

// next reads the field at the start of b and returns the rest; ok is false
// for a malformed field or a wire type other than bytes, varint and
// fixed64.
func next(b []byte) (f field, rest []byte, ok bool) {
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
func decodeSimpleFamily(b []byte) (*dto.MetricFamily, bool) {
	mf := &dto.MetricFamily{}
	n := 0 // metrics
	for rest := b; len(rest) > 0; {
		f, r, ok := next(rest)
		if !ok {
			return nil, false
		}
		rest = r
		switch {
		case f.num == mfName && f.typ == protowire.BytesType:
			mf.Name = proto.String(string(f.v))
		case f.num == mfHelp && f.typ == protowire.BytesType:
			mf.Help = proto.String(string(f.v))
		case f.num == mfUnit && f.typ == protowire.BytesType:
			mf.Unit = proto.String(string(f.v))
		case f.num == mfType && f.typ == protowire.VarintType:
			mf.Type = dto.MetricType(int32(f.x)).Enum()
		case f.num == mfMetric && f.typ == protowire.BytesType:
			n++
		default:
			return nil, false
		}
	}
	if n == 0 {
		return mf, true
	}
	block := make([]dto.Metric, n)
	mf.Metric = make([]*dto.Metric, 0, n)
	names := map[string]string{} // label names repeat across a family's metrics
	for rest := b; len(rest) > 0; {
		f, r, _ := next(rest) // read once above
		rest = r
		if f.num != mfMetric {
			continue
		}
		m := &block[len(mf.Metric)]
		if !decodeSimpleMetric(f.v, m, names) {
			return nil, false
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf, true
}

// decodeSimpleMetric decodes a Metric with labels, one gauge, counter or
// untyped value, and a timestamp into m.
func decodeSimpleMetric(b []byte, m *dto.Metric, names map[string]string) bool {
	labels := 0
	for rest := b; len(rest) > 0; {
		f, r, ok := next(rest)
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
			labels++
			continue
		case mGauge, mCounter, mUntyped:
		default:
			return false
		}
		if m.Gauge != nil || m.Counter != nil || m.Untyped != nil {
			return false // a second value: proto.Unmarshal merges them
		}
		val, ok := simpleValue(f.v)
		if !ok {
			return false
		}
		switch f.num {
		case mGauge:
			m.Gauge = &dto.Gauge{Value: val}
		case mCounter:
			m.Counter = &dto.Counter{Value: val}
		default:
			m.Untyped = &dto.Untyped{Value: val}
		}
	}
	if labels == 0 {
		return true
	}
	block := make([]dto.LabelPair, labels)
	m.Label = make([]*dto.LabelPair, 0, labels)
	for rest := b; len(rest) > 0; {
		f, r, _ := next(rest) // read once above
		rest = r
		if f.num != mLabel {
			continue
		}
		lp := &block[len(m.Label)]
		if !decodeLabel(f.v, lp, names) {
			return false
		}
		m.Label = append(m.Label, lp)
	}
	return true
}

// decodeLabel decodes a LabelPair into lp, interning its name in names.
func decodeLabel(b []byte, lp *dto.LabelPair, names map[string]string) bool {
	for rest := b; len(rest) > 0; {
		f, r, ok := next(rest)
		if !ok || f.typ != protowire.BytesType {
			return false
		}
		rest = r
		switch f.num {
		case lpName:
			n, ok := names[string(f.v)]
			if !ok {
				n = string(f.v)
				names[n] = n
			}
			lp.Name = &n
		case lpValue:
			s := string(f.v)
			lp.Value = &s
		default:
			return false
		}
	}
	return true
}

// simpleValue decodes a Gauge, Counter or Untyped message that holds at
// most its value (a pointer field: set when written, even as 0).
func simpleValue(b []byte) (*float64, bool) {
	var val *float64
	for rest := b; len(rest) > 0; {
		f, r, ok := next(rest)
		if !ok || f.num != valueField || f.typ != protowire.Fixed64Type {
			return nil, false
		}
		rest = r
		v := math.Float64frombits(f.x)
		val = &v
	}
	return val, true
}
