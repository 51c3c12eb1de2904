package store

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protowire"
)

// simpleChunk is one metric rendered by buildSimple: its index in the
// family, where its text line sits in the scratch buffer, and its series
// hash. It holds no pointers, so filling a slice of them costs no GC write
// barriers.
type simpleChunk struct {
	idx                int
	textStart, textEnd int
	hash               uint64
}

// simpleBufs is the scratch state of buildSimple. It is passed and returned
// by value: appending to a local slice costs nothing extra, while every
// append to a field of the heap-allocated builder would pass a GC write
// barrier, which made the first version of this code slower than the
// general path while a collection was running.
type simpleBufs struct {
	text []byte // text lines
	// inexact: some metric has a field its text line does not carry
	// exactly (see textExact), so the family keeps eager protobuf bytes.
	inexact bool
	// created: some counter has a created timestamp, which the family
	// keeps beside its text unless it keeps eager protobuf bytes.
	created bool
}

// buildSimple is build's fast path for counter, gauge and untyped families
// whose metrics all have the common shape (simpleValue) and sorted, valid
// label pairs: the normal push. It validates, renders the text line and
// hashes each metric in one walk over its labels, where the general path
// walks them about eight times; metrics already in client_golang's order
// (the usual case) are neither copied nor sorted, and otherwise the
// rendered chunks are reordered rather than rendered again. The protobuf
// bytes are left to the first protobuf scrape, unless a value is unset,
// -0 or a NaN with a payload, or a label value is unset: the text does not
// tell those from 0, NaN and "" (the rare case, encoded here as the general
// path does). The bytes are the general path's (render_test.go compares
// them).
//
// It returns nil, having set nothing in out, as soon as a metric does not
// qualify (nil metric, unsorted or duplicate label names, an invalid name
// or value, unknown fields, a value that is not the family's type); build
// then takes the general path, which reports the errors or handles the
// rare shape.
func (b *builder) buildSimple(out *built, mf *dto.MetricFamily) *family {
	ms := mf.Metric
	w := simpleBufs{text: b.text[:0]}
	chunks := b.chunks[:0]
	defer func() { // keep the grown buffers for the next family
		b.text, b.chunks = w.text, chunks
	}()
	inOrder := true
	for i, m := range ms {
		if m == nil {
			return nil
		}
		w.text = roomForLine(w.text)
		c := simpleChunk{idx: i, textStart: len(w.text)}
		var prev *dto.Metric
		if i > 0 {
			prev = ms[i-1]
		}
		var ok bool
		if w, c.hash, ok = appendSimpleMetric(w, out.name, out.typ, m, prev); !ok {
			return nil
		}
		c.textEnd = len(w.text)
		chunks = append(chunks, c)
		if inOrder && i > 0 && compareMetrics(ms[i-1], m) > 0 {
			inOrder = false
		}
	}
	f := newFamily(mf, out.name, out.typ)
	lines := lineSeq{text: w.text, codes: &b.codes}
	if inOrder {
		out.metrics = ms
	} else {
		sortChunks(chunks, ms)
		out.metrics = make([]*dto.Metric, len(chunks))
		for i, c := range chunks {
			out.metrics[i] = ms[c.idx]
		}
		lines.order = chunks // the lines in the sorted metrics' order
	}
	hashes := f.keepText(lines, len(chunks))
	for i, c := range chunks {
		hashes[i] = c.hash
	}
	f.setHashes(hashes)
	if w.inexact {
		if b.keepProtobuf(f, out.metrics) != nil {
			return nil // cannot happen for these shapes; the general path reports it
		}
	} else if w.created {
		f.setCreated(createdTimes(out.typ, out.metrics))
	}
	return f
}

// sortChunks sorts chunks stably into the client_golang order of their
// metrics. Families are mostly small: an insertion sort moves the 48-byte
// chunks with fewer comparisons and no calls through a function value.
func sortChunks(chunks []simpleChunk, ms []*dto.Metric) {
	if len(chunks) > 16 {
		slices.SortStableFunc(chunks, func(x, y simpleChunk) int { return compareMetrics(ms[x.idx], ms[y.idx]) })
		return
	}
	for i := 1; i < len(chunks); i++ {
		for j := i; j > 0 && compareMetrics(ms[chunks[j-1].idx], ms[chunks[j].idx]) > 0; j-- {
			chunks[j-1], chunks[j] = chunks[j], chunks[j-1]
		}
	}
}

// valueField returns the Metric field that holds the value of a counter,
// gauge or untyped family.
func valueField(typ dto.MetricType) protowire.Number {
	switch typ {
	case dto.MetricType_COUNTER:
		return fieldMetricCounter
	case dto.MetricType_GAUGE:
		return fieldMetricGauge
	}
	return fieldMetricUntyped
}

// lineValue is simpleValue for buildSimple: a counter may also carry a
// created timestamp (client_golang sets one on every counter it
// exposes), which its text line leaves out; created says so, and the
// family then keeps it beside the text, as the general path does.
func lineValue(m *dto.Metric) (num protowire.Number, v *float64, created, ok bool) {
	if num, v, ok := simpleValue(m); ok {
		return num, v, false, true
	}
	c := m.Counter
	if c == nil || c.CreatedTimestamp == nil || c.Exemplar != nil || len(c.ProtoReflect().GetUnknown()) > 0 ||
		m.Gauge != nil || m.Untyped != nil || m.Summary != nil || m.Histogram != nil || m.TimestampMs != nil ||
		len(m.ProtoReflect().GetUnknown()) > 0 {
		return 0, nil, false, false
	}
	return fieldMetricCounter, c.Value, true, true
}

// appendSimpleMetric appends m's text line to w.text and returns its
// series hash, or reports false (with the buffer in any state) if m does
// not qualify for buildSimple. The checks are checkMetric's for these
// types, plus sorted label names. prev is the metric before m, which
// qualified, or nil: a label name equal to prev's at the same position is
// known to be valid. It sets w.inexact if the line does not carry m
// exactly.
func appendSimpleMetric(w simpleBufs, name string, typ dto.MetricType, m, prev *dto.Metric) (simpleBufs, uint64, bool) {
	num, v, created, ok := lineValue(m)
	if !ok || num != valueField(typ) {
		return w, 0, false
	}
	if created {
		if createdExact(m.Counter.CreatedTimestamp) {
			w.created = true // kept beside the text (created.go)
		} else {
			w.inexact = true
		}
	}
	line := len(w.text)
	w.text = append(w.text, name...)
	for i, lp := range m.Label {
		if lp == nil || lp.Name == nil || len(lp.ProtoReflect().GetUnknown()) > 0 {
			return w, 0, false
		}
		ln := *lp.Name
		if i > 0 && ln <= *m.Label[i-1].Name {
			return w, 0, false
		}
		if (prev == nil || i >= len(prev.Label) || *prev.Label[i].Name != ln) && !validLabelName(ln) {
			return w, 0, false
		}
		if i == 0 {
			w.text = append(w.text, '{')
		} else {
			w.text = append(w.text, ',')
		}
		w.text = append(w.text, ln...)
		w.text = append(w.text, '=', '"')
		if lp.Value == nil {
			w.inexact = true
		} else if w.text, ok = appendLabelValue(w.text, *lp.Value); !ok {
			return w, 0, false
		}
		w.text = append(w.text, '"')
	}
	if len(m.Label) > 0 {
		w.text = append(w.text, '}')
	}
	hash := xxhash.Sum64(w.text[line:]) // the series key: see builder.hash
	var f float64
	if v != nil {
		f = *v
	}
	if v == nil || !floatExact(f) {
		w.inexact = true
	}
	w.text = append(w.text, ' ')
	w.text = appendTextFloat(w.text, f)
	w.text = append(w.text, '\n')
	return w, hash, true
}

// validLabelName is checkMetric's test of a label name.
func validLabelName(ln string) bool {
	return legacyLabelName(ln) && !strings.HasPrefix(ln, model.ReservedLabelPrefix)
}

// appendLabelValue appends v escaped for a quoted label value, or reports
// false if v is not valid UTF-8. One scan serves both: plain ASCII, by far
// the most common value, is copied as it is.
func appendLabelValue(b []byte, v string) ([]byte, bool) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= utf8.RuneSelf || c == '\\' || c == '"' || c == '\n' {
			if !utf8.ValidString(v[i:]) {
				return b, false
			}
			return appendEscaped(append(b, v[:i]...), v[i:], true), true
		}
	}
	return append(b, v...), true
}

// Tags of the fields appendLabelPair writes, each one byte.
var (
	labelTag      = byte(protowire.EncodeTag(fieldMetricLabel, protowire.BytesType))
	labelNameTag  = byte(protowire.EncodeTag(fieldLabelName, protowire.BytesType))
	labelValueTag = byte(protowire.EncodeTag(fieldLabelValue, protowire.BytesType))
)

// appendLabelPair appends lp as a `label` field of a Metric. Name and value
// shorter than 126 bytes together (nearly all) make every length one byte,
// written directly.
func appendLabelPair(b []byte, lp *dto.LabelPair) []byte {
	if lp.Name != nil && lp.Value != nil {
		if n, v := *lp.Name, *lp.Value; len(n)+len(v) < 124 {
			b = append(b, labelTag, byte(4+len(n)+len(v)), labelNameTag, byte(len(n)))
			b = append(b, n...)
			b = append(b, labelValueTag, byte(len(v)))
			return append(b, v...)
		}
	}
	b = protowire.AppendTag(b, fieldMetricLabel, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(labelPairSize(lp)))
	if lp.Name != nil {
		b = protowire.AppendTag(b, fieldLabelName, protowire.BytesType)
		b = protowire.AppendString(b, *lp.Name)
	}
	if lp.Value != nil {
		b = protowire.AppendTag(b, fieldLabelValue, protowire.BytesType)
		b = protowire.AppendString(b, *lp.Value)
	}
	return b
}
