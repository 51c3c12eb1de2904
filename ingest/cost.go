package ingest

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

// What a push takes on the heap while it is decoded and applied, on top of
// its body's buffer: TestDecodeCostCoversPush measures the bytes that
// Handle allocates for pushes of several shapes into a real store (the
// parsed families, the sanitised copies, the store's rendering and its
// scratch buffers: what the heap holds at the push's height if no
// collection runs meanwhile) and keeps these figures about a quarter
// above them. Both formats cost per body byte (label values are copied
// several times over) and per item: a text line, or a protobuf message
// (a metric, a label pair, a value, a bucket or quantile), each of which
// the decoder allocates.
//
// A text line of a histogram bucket or a summary quantile costs less than
// others: it adds a bucket to its metric, not a metric. Such lines are
// counted by their le or quantile label, at most one per line.
const (
	textCostPerByte    = 8
	textCostPerLine    = 1060
	textBucketDiscount = 750
	protoCostPerByte   = 7
	protoCostPerItem   = 250
)

// DecodeCost estimates, from above, the heap that decoding b as
// contentType and applying it will take: what a budget should be charged
// for it on top of b's own buffer, before the push is admitted.
func DecodeCost(b *Body, contentType string) int64 { return decodeCost(b.buf, contentType) }

// DecodeCostOf is DecodeCost of a decompressed body held in b: a push
// another peer forwarded. Such a body is not a *Body, so it is decoded
// from a copy (the parsers point into a *Body instead), which is charged
// on top.
func DecodeCostOf(b []byte, contentType string) int64 {
	return decodeCost(b, contentType) + int64(len(b))
}

func decodeCost(b []byte, contentType string) int64 {
	n := int64(len(b))
	if isDelimitedProto(contentType) {
		return protoCostPerByte*n + protoCostPerItem*int64(protoItems(b))
	}
	lines := int64(bytes.Count(b, []byte{'\n'})) + 1
	buckets := int64(bytes.Count(b, []byte(`le="`)) + bytes.Count(b, []byte(`quantile="`)))
	return textCostPerByte*n + textCostPerLine*lines - textBucketDiscount*min(buckets, lines)
}

// Field numbers of io.prometheus.client messages that protoItems looks
// into: MetricFamily.metric, Metric.summary and Metric.histogram.
const (
	fieldFamilyMetric    = 4
	fieldMetricSummary   = 4
	fieldMetricHistogram = 7
)

// protoItems counts the messages a delimited protobuf body decodes into,
// without decoding it: every metric, every length-delimited field of a
// metric (label pairs, the value), and every length-delimited field of a
// summary or histogram (quantiles, buckets, spans, packed counts). A body
// that does not parse is counted up to where it breaks; the decoder
// refuses it anyway.
func protoItems(b []byte) int {
	n := 0
	for len(b) > 0 {
		size, w := protowire.ConsumeVarint(b)
		if w < 0 || uint64(len(b)-w) < size {
			return n
		}
		bytesFields(b[w:w+int(size)], func(num protowire.Number, metric []byte) {
			if num == fieldFamilyMetric {
				n += metricItems(metric)
			}
		})
		b = b[w+int(size):]
	}
	return n
}

// metricItems counts a metric, its length-delimited fields and those of
// its summary or histogram.
func metricItems(m []byte) int {
	n := 1
	bytesFields(m, func(num protowire.Number, v []byte) {
		n++
		if num == fieldMetricSummary || num == fieldMetricHistogram {
			bytesFields(v, func(protowire.Number, []byte) { n++ })
		}
	})
	return n
}

// bytesFields calls fn with every length-delimited field of message m, up
// to where m does not parse.
func bytesFields(m []byte, fn func(num protowire.Number, v []byte)) {
	for len(m) > 0 {
		num, typ, w := protowire.ConsumeTag(m)
		if w < 0 {
			return
		}
		m = m[w:]
		if typ != protowire.BytesType {
			if w = protowire.ConsumeFieldValue(num, typ, m); w < 0 {
				return
			}
			m = m[w:]
			continue
		}
		v, w := protowire.ConsumeBytes(m)
		if w < 0 {
			return
		}
		fn(num, v)
		m = m[w:]
	}
}
