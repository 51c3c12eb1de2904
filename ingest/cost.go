package ingest

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

// What a push takes on the heap while it is decoded and applied, on top of
// its body's buffer: TestDecodeCostCoversPush measures the bytes that
// Handle allocates for pushes of several shapes into a real store (the
// parsed families, the store's rendering and its scratch buffers: what
// the heap holds at the push's height if no collection runs meanwhile)
// and keeps these figures 1.1 to 1.4 times above them. Both formats cost
// per body byte (the rendering) and per item: a text line, or a protobuf
// message (a metric, a label pair, a value, a bucket or quantile, an
// exemplar), each of which the decoder allocates.
//
// A text line of a histogram bucket or a summary quantile costs less than
// others: it adds a bucket to its metric, not a metric. Such lines are
// counted by their le or quantile label, at most one per line. A protobuf
// body carries a summary's or histogram's labels once, while the store's
// text repeats them on each of its lines: those bytes cost again
// (protoCost.repeated), as do the metrics whose protobuf encoding the
// store keeps because of an exemplar (protoCost.eager).
const (
	textCostPerByte    = 4
	textCostPerLine    = 1070
	textBucketDiscount = 560

	protoCostPerByte         = 4
	protoCostPerItem         = 215
	protoCostPerRepeatedByte = 4
	protoCostPerEagerByte    = 2
)

// DecodeCost estimates, from above, the heap that decoding b as
// contentType and applying it will take: what a budget should be charged
// for it on top of b's own buffer, before the push is admitted. A
// protobuf body that a template matches keeps it, so that the repeat scan
// does not compare them again (scanRepeat).
func DecodeCost(b *Body, contentType string) int64 {
	if !isDelimitedProto(contentType) {
		return decodeCost(b.buf, contentType)
	}
	b.template = templates.matching(b.buf)
	return protoDecodeCost(b.buf, b.template)
}

// DecodeCostOf is DecodeCost of a decompressed body held in b: a push
// another peer forwarded. Such a body is not a *Body, so it is decoded
// from a copy (the parsers point into a *Body instead), which is charged
// on top.
func DecodeCostOf(b []byte, contentType string) int64 {
	return decodeCost(b, contentType) + int64(len(b))
}

func decodeCost(b []byte, contentType string) int64 {
	if isDelimitedProto(contentType) {
		return protoDecodeCost(b, templates.matching(b))
	}
	n := int64(len(b))
	lines := int64(bytes.Count(b, []byte{'\n'})) + 1
	buckets := int64(countBucketLabels(b))
	return textCostPerByte*n + textCostPerLine*lines - textBucketDiscount*min(buckets, lines)
}

// protoDecodeCost is decodeCost of b, delimited protobuf, which t (if not
// nil) matches.
func protoDecodeCost(b []byte, t *protoTemplate) int64 {
	var c protoCost
	if t != nil {
		c = t.cost
	} else {
		c = protoItems(b)
	}
	return protoCostPerByte*int64(len(b)) + protoCostPerItem*int64(c.items) +
		protoCostPerRepeatedByte*int64(c.repeated) + protoCostPerEagerByte*int64(c.eager)
}

// countBucketLabels counts le=" in b (the end of quantile=" too): what
// bytes.Count(b, []byte(`le="`)) counts, found from the '=' of each, which
// a body has once a label, where bytes.Count stops at every 'l'.
func countBucketLabels(b []byte) int {
	n := 0
	for i := 2; i < len(b); {
		eq := bytes.IndexByte(b[i:], '=')
		if eq < 0 {
			break
		}
		i += eq
		if i+1 < len(b) && b[i+1] == '"' && b[i-1] == 'e' && b[i-2] == 'l' {
			n++
		}
		i++
	}
	return n
}

// Field numbers of io.prometheus.client messages that protoItems looks
// into.
const (
	fieldFamilyMetric    = 4
	fieldMetricLabel     = 1
	fieldMetricCounter   = 3
	fieldCounterExemplar = 2
	fieldMetricSummary   = 4
	fieldMetricHistogram = 7
	// Histogram.bucket, Bucket.exemplar and Histogram.exemplars (native).
	fieldHistogramBucket    = 3
	fieldBucketExemplar     = 3
	fieldHistogramExemplars = 16
)

// protoCost is what protoItems measures of a delimited protobuf body.
type protoCost struct {
	// items counts the messages the body decodes into: every metric,
	// every length-delimited field of a metric (label pairs, the value),
	// of a counter (its exemplar and created timestamp) and of an
	// exemplar, and every length-delimited field of a summary or
	// histogram (quantiles, buckets, spans, packed counts).
	items int
	// repeated is the label bytes the store's text repeats beyond one
	// line per metric: a summary's or histogram's labels are in the body
	// once, and on each of its lines in the text (a bucket or quantile
	// line each, _sum and _count).
	repeated int
	// eager is the bytes of metrics with an exemplar, which the text
	// cannot carry: the store keeps their protobuf encoding from the
	// start.
	eager int
}

// protoItems measures a delimited protobuf body without decoding it. A
// body that does not parse is measured up to where it breaks; the decoder
// refuses it anyway.
func protoItems(b []byte) protoCost {
	var c protoCost
	for len(b) > 0 {
		size, w := protowire.ConsumeVarint(b)
		if w < 0 || uint64(len(b)-w) < size {
			return c
		}
		bytesFields(b[w:w+int(size)], func(num protowire.Number, metric []byte) {
			if num == fieldFamilyMetric {
				c.metric(metric)
			}
		})
		b = b[w+int(size):]
	}
	return c
}

// metric adds metric m to c.
func (c *protoCost) metric(m []byte) {
	n, labels, entries, exemplar := 1, 0, -1, false
	bytesFields(m, func(num protowire.Number, v []byte) {
		n++
		switch num {
		case fieldMetricLabel:
			labels += len(v)
		case fieldMetricCounter:
			bytesFields(v, func(num protowire.Number, v []byte) {
				n++
				if num == fieldCounterExemplar {
					exemplar = true
					bytesFields(v, func(protowire.Number, []byte) { n++ })
				}
			})
		case fieldMetricSummary, fieldMetricHistogram:
			entries = 0
			bytesFields(v, func(num protowire.Number, v []byte) {
				n++
				entries++
				if num == fieldHistogramExemplars || (num == fieldHistogramBucket && hasField(v, fieldBucketExemplar)) {
					exemplar = true
				}
			})
		}
	})
	c.items += n
	if entries >= 0 {
		c.repeated += labels * (entries + 1)
	}
	if exemplar {
		c.eager += len(m)
	}
}

// hasField reports whether message m has a field num.
func hasField(m []byte, num protowire.Number) bool {
	found := false
	bytesFields(m, func(n protowire.Number, _ []byte) { found = found || n == num })
	return found
}

// bytesFields calls fn with every length-delimited field of message m, up
// to where m does not parse.
func bytesFields(m []byte, fn func(num protowire.Number, v []byte)) {
	for len(m) > 0 {
		if len(m) >= 2 && m[0] < 0x80 && m[0] >= 1<<3 && m[1] < 0x80 {
			// A one-byte tag (fields 1 to 15: every field protoItems
			// looks into) and a one-byte length or varint, read here
			// as protowire reads them.
			switch num, typ, n := protowire.Number(m[0]>>3), protowire.Type(m[0]&7), int(m[1]); {
			case typ == protowire.BytesType && n <= len(m)-2:
				fn(num, m[2:2+n])
				m = m[2+n:]
				continue
			case typ == protowire.VarintType:
				m = m[2:]
				continue
			}
		}
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
