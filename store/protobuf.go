package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The protobuf rendering of a family is made lazily. Prometheus scrapes
// text unless it is told otherwise, so most stores never serve protobuf,
// and encoding every push twice cost about a third of Apply and ~100 bytes
// of heap per series. A push keeps the text lines only; the first protobuf
// scrape of a family value parses them back (expfmt's text parser, under
// the family's own TYPE) and encodes the metrics, and keeps the bytes on
// the immutable value, so later protobuf scrapes of an unchanged group
// only concatenate.
//
// That is exact only if the text carries every field of every metric.
// textExact decides that when the family is built; a family that has a
// metric the text does not carry keeps its protobuf bytes from the start:
// unset values or label values (the text writes 0 and ""), -0 (written
// "0"), NaNs with a payload (stale markers; the parser makes math.NaN()),
// counts above 2^53 (written as floats), NaN quantiles or bucket bounds
// (the parser drops those lines), "quantile" or "le" labels of summaries
// and histograms (the parser takes them for its own), exemplars, float
// and native histogram fields and unknown fields. The one thing the writer
// adds, a +Inf bucket for histograms without one, is recorded
// (family.infAdded) and taken off again. Created timestamps, which the
// text leaves out too, are kept beside it (created.go) and put back.

// maxExactCount is the largest count a float64 holds exactly, and so the
// largest the text's float formatting of a count brings back.
const maxExactCount = 1 << 53

// canonicalNaN is the NaN the text parser returns for "NaN".
var canonicalNaN = math.Float64bits(math.NaN())

// floatExact reports whether the text formatting of f (appendTextFloat,
// expfmt's writeFloat) parses back to the same bits: the shortest
// formatting round-trips every other value.
func floatExact(f float64) bool {
	switch {
	case f == 0:
		return !math.Signbit(f)
	case f != f: // NaN
		return math.Float64bits(f) == canonicalNaN
	}
	return true
}

func floatPtrExact(f *float64) bool { return f != nil && floatExact(*f) }

func countExact(c *uint64) bool { return c != nil && *c <= maxExactCount }

// hasUnknown reports whether m has unknown fields.
func hasUnknown(m protoreflect.ProtoMessage) bool {
	return len(m.ProtoReflect().GetUnknown()) > 0
}

// textExactAll reports whether the metrics of a family of type typ can be
// rebuilt exactly from its text lines, and whether the text adds a +Inf
// bucket to every histogram (then it must be taken off again). A family of
// histograms of which some have a +Inf bucket and others not is not exact.
func textExactAll(typ dto.MetricType, ms []*dto.Metric) (exact, infAdded bool) {
	withInf, withoutInf := false, false
	for _, m := range ms {
		if !textExact(typ, m) {
			return false, false
		}
		if h := m.Histogram; h != nil {
			if slices.ContainsFunc(h.Bucket, func(b *dto.Bucket) bool { return math.IsInf(b.GetUpperBound(), 1) }) {
				withInf = true
			} else {
				withoutInf = true
			}
		}
	}
	if withInf && withoutInf {
		return false, false
	}
	return true, withoutInf
}

// textExact reports whether m, a valid metric of a family of type typ
// (checkMetric), has only fields its text lines carry exactly.
func textExact(typ dto.MetricType, m *dto.Metric) bool {
	if m.TimestampMs != nil || hasUnknown(m) {
		return false
	}
	special := ""
	switch typ {
	case dto.MetricType_SUMMARY:
		special = model.QuantileLabel
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		special = model.BucketLabel
	}
	for _, lp := range m.Label {
		if lp.Name == nil || lp.Value == nil || hasUnknown(lp) || *lp.Name == special {
			return false
		}
	}
	set := 0
	for _, p := range []bool{m.Counter != nil, m.Gauge != nil, m.Untyped != nil, m.Summary != nil, m.Histogram != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return false
	}
	switch typ {
	case dto.MetricType_COUNTER:
		c := m.Counter
		return c != nil && floatPtrExact(c.Value) && c.Exemplar == nil && createdExact(c.CreatedTimestamp) && !hasUnknown(c)
	case dto.MetricType_GAUGE:
		return m.Gauge != nil && floatPtrExact(m.Gauge.Value) && !hasUnknown(m.Gauge)
	case dto.MetricType_UNTYPED:
		return m.Untyped != nil && floatPtrExact(m.Untyped.Value) && !hasUnknown(m.Untyped)
	case dto.MetricType_SUMMARY:
		return m.Summary != nil && summaryExact(m.Summary)
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return m.Histogram != nil && histogramExact(m.Histogram)
	}
	return false
}

func summaryExact(s *dto.Summary) bool {
	if !countExact(s.SampleCount) || !floatPtrExact(s.SampleSum) || !createdExact(s.CreatedTimestamp) || hasUnknown(s) {
		return false
	}
	for _, q := range s.Quantile {
		if q == nil || !floatPtrExact(q.Quantile) || math.IsNaN(*q.Quantile) || !floatPtrExact(q.Value) || hasUnknown(q) {
			return false
		}
	}
	return true
}

func histogramExact(h *dto.Histogram) bool {
	if !countExact(h.SampleCount) || h.SampleCountFloat != nil || !floatPtrExact(h.SampleSum) ||
		h.Schema != nil || h.ZeroThreshold != nil || h.ZeroCount != nil || h.ZeroCountFloat != nil ||
		len(h.NegativeSpan) > 0 || len(h.NegativeDelta) > 0 || len(h.NegativeCount) > 0 ||
		len(h.PositiveSpan) > 0 || len(h.PositiveDelta) > 0 || len(h.PositiveCount) > 0 ||
		len(h.Exemplars) > 0 || !createdExact(h.CreatedTimestamp) || hasUnknown(h) {
		return false
	}
	for _, b := range h.Bucket {
		if b == nil || !floatPtrExact(b.UpperBound) || math.IsNaN(*b.UpperBound) || !countExact(b.CumulativeCount) ||
			b.CumulativeCountFloat != nil || b.Exemplar != nil || hasUnknown(b) {
			return false
		}
	}
	return true
}

// protobuf returns the concatenated protobuf `metric` fields of f: the
// ones kept when f was built or by a scrape (kept), else it renders them
// from the text, and keeps them if c has room (nil: never). Concurrent
// first calls may both render; they produce the same bytes.
func (f *family) protobuf(c *renderCache) ([]byte, error) {
	if p := f.kept(); p != nil {
		return p, nil
	}
	if f.series() == 0 {
		return []byte{}, nil // what proto.Marshal writes for no metrics
	}
	pb, err := f.renderProtobuf(make([]byte, 0, f.protobufSizeGuess()), &textScratch{})
	if err != nil {
		return nil, err
	}
	if c != nil {
		if cap(pb)-len(pb) > len(pb)/8 { // kept for the family's life: trim
			pb = append(make([]byte, 0, len(pb)), pb...)
		}
		c.keep(f, &f.pbKept, pb)
	}
	return pb, nil
}

// protobufScratch is protobuf for a scrape: a rendering that c has no room
// for is made in sc (returned, grown) instead of a new allocation, so a
// scrape past the cache's bound allocates nothing per family. The result
// is valid until the next call with sc.
func (f *family) protobufScratch(c *renderCache, sc *renderScratch) ([]byte, error) {
	if p := f.kept(); p != nil {
		return p, nil
	}
	if f.series() == 0 || !c.fits(f.protobufSizeGuess()) {
		pb, err := f.renderProtobuf(sc.out[:0], &sc.text)
		if err == nil {
			sc.out = pb
		}
		return pb, err
	}
	return f.protobuf(c)
}

// protobufSizeGuess is about the size of f's protobuf rendering, or more:
// without the metric name a metric is usually shorter than its text line,
// and a created timestamp (a dozen bytes beside the text) takes a few
// bytes more in the protobuf.
func (f *family) protobufSizeGuess() int {
	return f.textSize() + 2*len(f.createdTimes())
}

// renderScratch is the scratch space of a scrape's renderings.
type renderScratch struct {
	out  []byte
	text textScratch
}

// kept returns the protobuf `metric` fields kept on f (eager or by a
// scrape), or nil.
func (f *family) kept() []byte {
	if p := f.pb.Load(); p != nil {
		return *p
	}
	if p := f.pbKept.Load(); p != nil {
		return *p
	}
	return nil
}

// renderProtobuf appends the protobuf fields of f, rendered from its text,
// to b. Without the metric name a field is usually shorter than its line.
func (f *family) renderProtobuf(b []byte, sc *textScratch) ([]byte, error) {
	if hasSimpleText(f.typ()) {
		return sc.appendSimpleProtobuf(b, f.name, f.typ(), f.text(&sc.lines), f.createdTimes())
	}
	return f.complexProtobuf(b, sc)
}

// textScratch is the scratch space of renderProtobuf, reused by a caller
// that renders many families (a persistence write).
type textScratch struct {
	lines   []byte // front-coded text, decoded
	val     []byte
	complex complexText
}

// complexProtobuf appends the protobuf fields of a summary or histogram
// family to b: straight from its text, else through expfmt's parser.
func (f *family) complexProtobuf(b []byte, sc *textScratch) ([]byte, error) {
	pb, n, err := sc.complex.appendProtobuf(b, f.name, f.typ(), f.text(&sc.lines), f.infAdded(), f.createdTimes())
	if err == nil && n == f.series() {
		return pb, nil
	}
	parsed, err := f.parsedProtobuf()
	if err != nil {
		return nil, err
	}
	return append(b, parsed...), nil
}

// parsedProtobuf renders the protobuf fields of a summary or histogram
// family from its text through expfmt's parser.
func (f *family) parsedProtobuf() ([]byte, error) {
	ms, err := f.parseText()
	if err != nil {
		return nil, err
	}
	if err := f.putCreated(ms); err != nil {
		return nil, err
	}
	var enc metricEncoder
	pb, err := enc.appendTo(make([]byte, 0, enc.size(ms)), ms)
	if err != nil {
		return nil, fmt.Errorf("encode family %q: %w", f.name, err)
	}
	return pb, nil
}

// appendSimpleProtobuf appends the `metric` fields of a counter, gauge or
// untyped family called name from its text lines, as appendSimple encodes
// them: label pairs with name and value, then the value. It reads only
// what appendSimpleMetric and appendTextSamples write (every line
// name{label="value",...} value), in one pass per line, without building
// dto structs: the first protobuf scrape of the usual family costs less
// than encoding it at push time did.
func (sc *textScratch) appendSimpleProtobuf(b []byte, name string, typ dto.MetricType, text, created []byte) ([]byte, error) {
	val := sc.val
	defer func() { sc.val = val }()
	num := bytesTag(valueField(typ))
	cr := createdReader(created)
	for len(text) > 0 {
		if len(text) <= len(name) || string(text[:len(name)]) != name {
			return nil, fmt.Errorf("render protobuf of family %q: malformed text line %q", name, firstLine(text))
		}
		line := text[len(name):]
		// The Metric is written in place after a one-byte length, which
		// putLength fixes up.
		at := len(b)
		b = append(b, tagMetric, 0)
		var ok bool
		if line[0] == '{' {
			if b, val, line, ok = appendTextLabels(b, val, line[1:]); !ok {
				return nil, fmt.Errorf("render protobuf of family %q: malformed labels in %q", name, firstLine(text))
			}
		}
		if len(line) < 2 || line[0] != ' ' {
			return nil, fmt.Errorf("render protobuf of family %q: malformed text line %q", name, firstLine(text))
		}
		v, rest, ok := scanLineValue(line[1:])
		if !ok {
			return nil, fmt.Errorf("render protobuf of family %q: malformed value in %q", name, firstLine(text))
		}
		text = rest
		if ts, ok := cr.next(); ok { // a counter's created timestamp follows its value
			b = append(b, num)
			b = protowire.AppendVarint(b, uint64(1+8+createdFieldSize(fieldCounterCreated, ts)))
			b = append(b, tagValue)
			b = protowire.AppendFixed64(b, math.Float64bits(v))
			b = appendCreatedField(b, fieldCounterCreated, ts)
		} else {
			b = append(b, num, 1+8, tagValue)
			b = protowire.AppendFixed64(b, math.Float64bits(v))
		}
		b = putLength(b, at+1)
	}
	return b, nil
}

// putLength fills in the length of the message that b holds from at+1 on,
// as a varint at b[at], where one byte was left for it: it moves the
// message up if the length takes more.
func putLength(b []byte, at int) []byte {
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	var l [binary.MaxVarintLen64]byte
	ln := protowire.AppendVarint(l[:0], uint64(n))
	b = append(b, ln[1:]...)
	copy(b[at+len(ln):], b[at+1:at+1+n])
	copy(b[at:], ln)
	return b
}

// firstLine returns text up to its first '\n', for an error message.
func firstLine(text []byte) []byte {
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		return text[:i]
	}
	return text
}

// parseText returns the metrics f's text lines describe, which are the
// metrics f was built from (textExact).
func (f *family) parseText() ([]*dto.Metric, error) {
	header := "# TYPE " + f.name + " " + textType(f.typ()) + "\n"
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(io.MultiReader(strings.NewReader(header), bytes.NewReader(f.text(new([]byte)))))
	if err != nil {
		return nil, fmt.Errorf("parse stored family %q: %w", f.name, err)
	}
	mf := mfs[f.name]
	if len(mfs) != 1 || mf == nil || len(mf.Metric) != f.series() {
		return nil, fmt.Errorf("parse stored family %q: got %d families, %d metrics, want 1 family of %d", f.name, len(mfs), len(mf.GetMetric()), f.series())
	}
	if f.infAdded() {
		for _, m := range mf.Metric {
			h := m.Histogram
			if n := len(h.GetBucket()); n == 0 || !math.IsInf(h.Bucket[n-1].GetUpperBound(), 1) {
				return nil, fmt.Errorf("parse stored family %q: a histogram lacks the +Inf bucket the text adds", f.name)
			}
			h.Bucket = h.Bucket[:len(h.Bucket)-1]
		}
	}
	return mf.Metric, nil
}
