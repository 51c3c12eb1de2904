package store

import (
	"fmt"
	"unsafe"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Created timestamps. client_golang sets one on every counter, summary
// and histogram it pushes in protobuf; the text lines leave them out.
// Rather than keep the whole protobuf rendering from the start for them,
// a family keeps them beside its text (family.created), and the protobuf
// renderers put them back in their place: per metric, in the family's
// order, the length of the Timestamp message plus one (a uvarint; 0: the
// metric has none) and the message as proto.Marshal writes it. A few
// bytes a metric instead of the metric's labels and values once more.

// Field numbers of the created_timestamp fields, and of Timestamp's.
const (
	fieldCounterCreated   protowire.Number = 3
	fieldSummaryCreated   protowire.Number = 4
	fieldHistogramCreated protowire.Number = 15
	fieldTimestampSeconds protowire.Number = 1
	fieldTimestampNanos   protowire.Number = 2
)

// createdOf returns the created timestamp of m, a metric of a family of
// type typ, or nil.
func createdOf(typ dto.MetricType, m *dto.Metric) *timestamppb.Timestamp {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetCreatedTimestamp()
	case dto.MetricType_SUMMARY:
		return m.GetSummary().GetCreatedTimestamp()
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return m.GetHistogram().GetCreatedTimestamp()
	}
	return nil
}

// createdExact reports whether ts, a created timestamp or nil, is kept
// exactly beside the text: it has no unknown fields.
func createdExact(ts *timestamppb.Timestamp) bool { return ts == nil || !hasUnknown(ts) }

// timestampSize is the size of ts encoded as proto.Marshal does: seconds,
// then nanos, each left out when zero (a negative int32 is sign-extended
// to ten bytes).
func timestampSize(ts *timestamppb.Timestamp) int {
	n := 0
	if s := ts.GetSeconds(); s != 0 {
		n += 1 + protowire.SizeVarint(uint64(s)) //nolint:gosec // two's complement, as protobuf encodes int64
	}
	if ns := ts.GetNanos(); ns != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(ns))) //nolint:gosec // sign-extended, as protobuf encodes int32
	}
	return n
}

func appendTimestamp(b []byte, ts *timestamppb.Timestamp) []byte {
	if s := ts.GetSeconds(); s != 0 {
		b = protowire.AppendTag(b, fieldTimestampSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s)) //nolint:gosec // two's complement, as protobuf encodes int64
	}
	if ns := ts.GetNanos(); ns != 0 {
		b = protowire.AppendTag(b, fieldTimestampNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(ns))) //nolint:gosec // sign-extended, as protobuf encodes int32
	}
	return b
}

// createdTimes returns what family.created points at for ms, the metrics
// of a family of type typ in its order, in one allocation of the exact
// size: the length of their created timestamps (a uvarint), then the
// timestamps; nil if none has one. Each must be createdExact.
func createdTimes(typ dto.MetricType, ms []*dto.Metric) []byte {
	size, some := 0, false
	for _, m := range ms {
		ts := createdOf(typ, m)
		if ts == nil {
			size++
			continue
		}
		some = true
		n := timestampSize(ts)
		size += protowire.SizeVarint(uint64(n)+1) + n
	}
	if !some {
		return nil
	}
	b := make([]byte, 0, protowire.SizeVarint(uint64(size))+size) //nolint:gosec // a length
	b = protowire.AppendVarint(b, uint64(size))                   //nolint:gosec // a length
	for _, m := range ms {
		ts := createdOf(typ, m)
		if ts == nil {
			b = append(b, 0)
			continue
		}
		b = protowire.AppendVarint(b, uint64(timestampSize(ts))+1)
		b = appendTimestamp(b, ts)
	}
	return b
}

// createdReader reads created timestamps (family.createdTimes, after
// their length) metric by metric; a nil one reads no timestamps.
type createdReader []byte

// next returns the Timestamp message of the next metric, and whether it
// has one.
func (r *createdReader) next() ([]byte, bool) {
	if len(*r) == 0 {
		return nil, false
	}
	v, k := protowire.ConsumeVarint(*r)
	*r = (*r)[k:]
	if v == 0 {
		return nil, false
	}
	ts := (*r)[:v-1]
	*r = (*r)[v-1:]
	return ts, true
}

// appendCreatedField appends ts, a Timestamp message, as the field num.
func appendCreatedField(b []byte, num protowire.Number, ts []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, ts)
}

// createdFieldSize is the size of appendCreatedField's field.
func createdFieldSize(num protowire.Number, ts []byte) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(len(ts))
}

// setCreated keeps b, what createdTimes returned, as f's created
// timestamps.
func (f *family) setCreated(b []byte) {
	if b != nil {
		f.created = unsafe.SliceData(b)
	}
}

// putCreated puts the created timestamps of f back on ms, its metrics
// parsed from its text (parseText), for a renderer that goes through
// expfmt's parser.
func (f *family) putCreated(ms []*dto.Metric) error {
	r := createdReader(f.createdTimes())
	for _, m := range ms {
		b, ok := r.next()
		if !ok {
			continue
		}
		ts := &timestamppb.Timestamp{}
		if err := proto.Unmarshal(b, ts); err != nil {
			return fmt.Errorf("created timestamp of family %q: %w", f.name, err)
		}
		setCreatedOf(m, ts)
	}
	return nil
}

// setCreatedOf sets ts as the created timestamp of m's counter, summary
// or histogram, whichever it has.
func setCreatedOf(m *dto.Metric, ts *timestamppb.Timestamp) {
	switch {
	case m.Counter != nil:
		m.Counter.CreatedTimestamp = ts
	case m.Summary != nil:
		m.Summary.CreatedTimestamp = ts
	case m.Histogram != nil:
		m.Histogram.CreatedTimestamp = ts
	}
}
