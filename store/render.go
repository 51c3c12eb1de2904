package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// metricField is the field number of `repeated Metric metric` in
// io.prometheus.client.MetricFamily.
const metricField protowire.Number = 4

// family is one metric family of one group, rendered once when it is
// written. No dto structs are kept: a scrape needs the text (and, when it
// asks for protobuf, the protobuf) bytes, and the rare paths (JSON API,
// persistence, hand-off, the message of a duplicate) decode them again.
//
// A family is immutable once it is committed; a write replaces it. The
// exceptions are the protobuf and OpenMetrics renderings, made on the first
// scrape in that format (protobuf.go) and published atomically.
type family struct {
	// A store holds one family value per family per group, so every 16
	// bytes here is a size class: counts, lengths and the time are
	// packed, the flags share a word, and the series hashes are found
	// from the data (they precede it in one allocation). The value is
	// 128 bytes, two cache lines when the allocator aligns it, and name,
	// data and textLen lie in the first (TestFamilyLayout).
	name string
	// data holds the text 0.0.4 sample lines (no HELP or TYPE), in the
	// client_golang metric order: as they are, or front-coded when
	// textLen is set (fronttext.go). Read them with text. A string: the
	// bytes never change, and a length is all a slice would add. The
	// series hashes lie just before its first byte (seriesHashes).
	data string
	// textLen is the length of the text when data holds it front-coded,
	// else 0.
	textLen uint32
	// samples counts the lines of data: the series Prometheus ingests from
	// the family (a histogram's buckets, _sum and _count each count). The
	// store's series gauge and --store.max-series count these.
	samples uint32
	// sec and nsec are the time of the push that last wrote the family
	// (pushTime), in Unix seconds and nanoseconds; nsec's top two bits
	// hold its time zone (timeZone), zoneOffset the offset of a fixed one.
	sec  int64
	nsec uint32
	// nHashes is the number of series hashes before data: the series
	// hashes, sorted (seriesHashes).
	nHashes uint32
	// flags holds the metric type and the fam* bits below. Only famLeft
	// changes once the family is built, while scrapes read the word.
	flags      atomic.Uint32
	zoneOffset int32
	// pb holds the protobuf encoding of the metrics as `metric` fields of a
	// MetricFamily message, in the same order, when the family is built if
	// the text cannot carry every field (eager: see textExact). Otherwise
	// a protobuf scrape renders them from the text and keeps them in
	// pbKept if the store's renderCache has room; om likewise holds the
	// OpenMetrics sample lines a scrape rendered.
	pb     atomic.Pointer[[]byte]
	pbKept atomic.Pointer[[]byte]
	om     atomic.Pointer[[]byte]
	// created points at the created timestamps the text lines leave out
	// (created.go), when they are the only thing the text does not carry:
	// client_golang sets one on every counter, summary and histogram it
	// pushes in protobuf, and these few bytes stand in for protobuf bytes
	// kept from the start. Nil if no metric has one. Their length comes
	// first (createdTimes), so that a pointer, and no slice header of its
	// own, is all a family holds.
	created *byte
	help    string
	unit    *string // nil: no unit
	// id is unique among the families of the process: gzipped scrapes
	// know a chunk of families by their ids (gzip.go).
	id uint64
}

// The bits of family.flags below famTypeShift; the metric type
// (dto.MetricType) lies above it.
const (
	// famLeft is set once the family is no longer in the store: a scrape
	// that still writes it keeps no rendering (renderCache).
	famLeft uint32 = 1 << iota
	// famHelp distinguishes a family without HELP (text push without a
	// HELP line: no HELP line at all) from an empty HELP (protobuf:
	// "# HELP x ").
	famHelp
	// famInfAdded: none of the family's histograms has a +Inf bucket, so
	// the text has one per metric that the protobuf must not have.
	famInfAdded
	// famUTF8: the family name or a label name is not a legacy name, so a
	// scrape that did not ask for allow-utf-8 escapes the family
	// (escape.go). Its text quotes those names; its protobuf bytes are
	// kept from the start, so nothing parses that text back.
	famUTF8

	famTypeShift = 8
)

// typ returns the family's metric type.
func (f *family) typ() dto.MetricType { return dto.MetricType(f.flags.Load() >> famTypeShift) }

// is reports whether the family has flag, one of the fam* bits.
func (f *family) is(flag uint32) bool { return f.flags.Load()&flag != 0 }

// hasHelp reports whether the family has a HELP (famHelp).
func (f *family) hasHelp() bool { return f.is(famHelp) }

// infAdded reports famInfAdded.
func (f *family) infAdded() bool { return f.is(famInfAdded) }

// utf8 reports famUTF8.
func (f *family) utf8() bool { return f.is(famUTF8) }

// set sets flag if on. Only a family not yet in the store, or famLeft.
func (f *family) set(flag uint32, on bool) {
	if on {
		f.flags.Or(flag)
	}
}

// timeZone is the push time's zone: local (as time.Now has it), UTC, or
// zoneOffset seconds east of UTC (a time decoded from a persistence file
// written in another zone), so that the time reads back as it was set.
type timeZone uint8

const (
	zoneLocal timeZone = iota
	zoneUTC
	zoneFixed
)

// nsecZoneShift is where family.nsec keeps the zone, above the
// nanoseconds (below 1e9 < 1<<30).
const (
	nsecZoneShift = 30
	nsecMask      = 1<<nsecZoneShift - 1
)

// zeroSec is family.sec of the zero time.
var zeroSec = time.Time{}.Unix()

// setPushTime sets the time of the push that wrote the family. Its
// monotonic clock reading is not kept.
func (f *family) setPushTime(t time.Time) {
	zone, offset := zoneLocal, 0
	switch loc := t.Location(); loc {
	case time.Local:
	case time.UTC:
		zone = zoneUTC
	default:
		zone = zoneFixed
		_, offset = t.Zone()
	}
	f.sec, f.nsec = t.Unix(), uint32(t.Nanosecond())|uint32(zone)<<nsecZoneShift //nolint:gosec // below 1e9
	f.zoneOffset = int32(offset)                                                 //nolint:gosec // under a day
}

// pushTime returns the time of the push that wrote the family, or the
// zero time. A time in a zone other than the local one or UTC comes back
// in a fixed zone of the same offset, as a persistence file decodes it.
func (f *family) pushTime() time.Time {
	ns := int64(f.nsec & nsecMask)
	if f.sec == zeroSec && ns == 0 {
		return time.Time{}
	}
	t := time.Unix(f.sec, ns)
	switch timeZone(f.nsec >> nsecZoneShift) {
	case zoneUTC:
		return t.UTC()
	case zoneFixed:
		return t.In(time.FixedZone("", int(f.zoneOffset)))
	}
	return t
}

// seriesHashes returns the series hashes, sorted. They must not be
// modified.
func (f *family) seriesHashes() []uint64 {
	if f.nHashes == 0 {
		return nil
	}
	end := unsafe.Pointer(unsafe.StringData(f.data))
	return unsafe.Slice((*uint64)(unsafe.Add(end, -8*int(f.nHashes))), f.nHashes)
}

// setHashes sorts h and makes it the family's series hashes. h must end
// where data begins, in the same allocation (keepText's words): the
// family finds them there, and holds them through data.
func (f *family) setHashes(h []uint64) {
	slices.Sort(h)
	if len(h) > 0 && uintptr(unsafe.Pointer(&h[len(h)-1]))+8 != uintptr(unsafe.Pointer(unsafe.StringData(f.data))) {
		panic("store: series hashes not just before the data")
	}
	f.nHashes = uint32(len(h)) //nolint:gosec // a family holds far fewer than 4G series
}

// createdTimes returns the created timestamps f.created points at, after
// their length, or nil.
func (f *family) createdTimes() []byte {
	if f.created == nil {
		return nil
	}
	p := unsafe.Pointer(f.created)
	n, w := 0, 0
	for shift := 0; ; shift += 7 { // the length, a uvarint that createdTimes wrote
		c := *(*byte)(unsafe.Add(p, w))
		w++
		n |= int(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	return unsafe.Slice((*byte)(unsafe.Add(p, w)), n)
}

// text returns the text 0.0.4 sample lines: data itself, or the lines
// decoded into *sc (grown, and valid until its next use) when data is
// front-coded. The result must not be modified.
func (f *family) text(sc *[]byte) []byte {
	if f.textLen == 0 {
		return f.dataBytes()
	}
	*sc = appendFrontDecoded((*sc)[:0], f.dataBytes(), int(f.textLen))
	return *sc
}

// dataBytes returns data as a byte slice of its own memory, which must
// not be modified.
func (f *family) dataBytes() []byte {
	return unsafe.Slice(unsafe.StringData(f.data), len(f.data))
}

// textSize is the length of the text lines, whether or not data holds
// them front-coded: what a scrape writes, and what --store.max-bytes
// counts.
func (f *family) textSize() int {
	if f.textLen == 0 {
		return len(f.data)
	}
	return int(f.textLen)
}

// series returns the number of metrics (series in client_golang's sense).
func (f *family) series() int { return int(f.nHashes) }

// keepText keeps a copy of lines as the family's sample lines,
// front-coded if that saves enough (fronttext.go), and counts them. It
// returns room for n series hashes, which the caller fills and hands to
// setHashes: the hashes and the text share one allocation of the exact
// size (to the word), so a family costs one object besides its value.
func (f *family) keepText(lines lineSeq, n int) []uint64 {
	s := measureLines(lines)
	f.samples, f.textLen = uint32(s.lines), 0 //nolint:gosec // as below
	size := s.text
	if s.coded >= 0 {
		size = s.coded
		f.textLen = uint32(s.text) //nolint:gosec // measureLines codes less than 4 GiB only
	}
	words := make([]uint64, n+(size+7)/8)
	hashes := words[:n:n]
	f.data = ""
	if size == 0 {
		return hashes
	}
	start := (*byte)(unsafe.Pointer(&words[n]))
	data := unsafe.Slice(start, size)[:0]
	if s.coded >= 0 {
		data = appendFrontCoded(data, lines)
	} else {
		for line, ok := lines.next(); ok; line, ok = lines.next() {
			data = append(data, line...)
		}
	}
	if len(data) != size || unsafe.SliceData(data) != start {
		panic("store: keepText measured the text wrong") // the memory would not be words'
	}
	f.data = unsafe.String(start, size)
	return hashes
}

// header returns the family without metrics.
func (f *family) header() *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: proto.String(f.name), Type: f.typ().Enum()}
	if f.hasHelp() {
		mf.Help = proto.String(f.help)
	}
	if f.unit != nil {
		mf.Unit = proto.String(*f.unit)
	}
	return mf
}

// decode returns a new MetricFamily equal to the one that was rendered. It
// does not cache a protobuf rendering it has to make: the rare paths that
// decode (persistence writes above all) visit every family, and keeping
// what they rendered would cost the heap that rendering lazily saves.
func (f *family) decode() (*dto.MetricFamily, error) {
	pb, err := f.protobuf(nil)
	if err != nil {
		return nil, err
	}
	mf := f.header()
	if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(pb, mf); err != nil {
		return nil, fmt.Errorf("decode stored family %q: %w", f.name, err)
	}
	return mf, nil
}

// openMetrics returns the OpenMetrics sample lines: the ones a scrape kept,
// else it renders them and keeps them if c has room. Concurrent first calls
// may both render; they produce the same bytes.
func (f *family) openMetrics(c *renderCache) ([]byte, error) {
	if p := f.om.Load(); p != nil {
		return *p, nil
	}
	var body []byte
	if f.series() > 0 {
		mf, err := f.decode()
		if err != nil {
			return nil, err
		}
		mf.Help, mf.Unit = nil, nil
		var buf bytes.Buffer
		if _, err := expfmt.MetricFamilyToOpenMetrics(&buf, mf); err != nil {
			return nil, fmt.Errorf("render family %q as OpenMetrics: %w", f.name, err)
		}
		body = bytes.Clone(dropFirstLine(buf.Bytes()))
	}
	c.keep(f, &f.om, body)
	return body, nil
}

// dropFirstLine removes the TYPE line expfmt writes before the samples.
func dropFirstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return nil
}

// built is a family ready to be committed together with what the checks
// need: the metrics it was rendered from (for messages and for comparing
// label sets on a hash hit) and the errors of validating it on its own. fam
// is nil if errs is not empty.
type built struct {
	name    string
	typ     dto.MetricType
	fam     *family
	metrics []*dto.Metric
	errs    []error
}

// builder validates and renders families. It is not safe for concurrent use:
// each write takes one from the store's pool.
type builder struct {
	buf    bytes.Buffer
	text   []byte
	key    []byte // scratch for series hashes
	chunks []simpleChunk
	codes  []lineCode // keepText's scratch: how measureLines codes each line
	enc    metricEncoder
	// tmp, name and typ make the family expfmt renders without allocating.
	tmp  dto.MetricFamily
	name string
	typ  dto.MetricType
	// A push's built families, while it is applied (Store.Apply).
	builts  []built
	news    []*built
	failure built
	gauges  gaugeScratch
	// ApplyRepeat's scratch: the families it replaces and their
	// replacements, a stored text decoded and the text with new values.
	repeatOlds, repeatNews []*family
	repeatOld, repeatText  []byte
	repeatSpans            []repeatSpan
	// A repeat's values and value texts in the store's order of the
	// lines, when the body has them in another (repeatShape.lineOf).
	repeatValues []float64
	repeatTexts  [][]byte
}

// builtSlots returns n zero built values from b's scratch.
func (b *builder) builtSlots(n int) []built {
	b.builts = slices.Grow(b.builts[:0], n)[:n]
	clear(b.builts)
	return b.builts
}

func newBuilder() *builder { return &builder{} }

// build validates mf on its own and renders it. It does not modify mf or
// anything mf points to (metrics whose labels need sorting are cloned), so
// callers may keep using it.
func (b *builder) build(mf *dto.MetricFamily, t time.Time) *built {
	out := &built{}
	b.buildInto(out, mf, t)
	return out
}

// buildInto is build writing into *out, which must be zero: a push builds
// all its families into one slice.
func (b *builder) buildInto(out *built, mf *dto.MetricFamily, t time.Time) *built {
	out.name, out.typ = mf.GetName(), mf.GetType()
	if err := checkFamilyHeader(mf); err != nil {
		out.errs = []error{err}
		return out
	}
	if hasSimpleText(out.typ) && legacyName(out.name) {
		if fam := b.buildSimple(out, mf); fam != nil {
			fam.setPushTime(t)
			return b.finish(out, fam)
		}
	}
	return b.buildGeneral(out, mf, t)
}

// buildGeneral is build for every family: it validates each metric with
// checkMetric, sorts copies where needed, and renders the text (expfmt for
// summaries and histograms), plus the protobuf bytes if the text cannot
// carry the metrics exactly (textExact).
func (b *builder) buildGeneral(out *built, mf *dto.MetricFamily, t time.Time) *built {
	ms := sortedLabels(mf.Metric)
	for _, m := range ms {
		if err := checkMetric(out.name, out.typ, m); err != nil {
			out.errs = append(out.errs, err)
		}
	}
	if len(out.errs) > 0 {
		return out
	}
	slices.SortStableFunc(ms, compareMetrics)
	out.metrics = ms
	fam, err := b.render(mf, ms, t)
	if err != nil {
		out.errs = []error{err}
		return out
	}
	return b.finish(out, fam)
}

// finish completes out with fam, the rendering of out.metrics, unless two
// of them have the same label set.
func (b *builder) finish(out *built, fam *family) *built {
	if errs := b.duplicatesWithin(out, fam.seriesHashes()); len(errs) > 0 {
		out.errs = errs
		return out
	}
	out.fam = fam
	return out
}

// sortedLabels returns a copy of ms without nil entries in which every
// metric has its label pairs sorted by name. Metrics already sorted (the
// normal case: ingest sanitises) are shared, the others are cloned.
func sortedLabels(ms []*dto.Metric) []*dto.Metric {
	out := make([]*dto.Metric, 0, len(ms))
	for _, m := range ms {
		if m == nil {
			continue
		}
		if !labelsSorted(m.Label) {
			m = proto.Clone(m).(*dto.Metric)
			slices.SortStableFunc(m.Label, compareLabelPairs)
		}
		out = append(out, m)
	}
	return out
}

// labelsSorted reports whether ls is sorted by name (duplicates allowed;
// checkMetric reports them).
func labelsSorted(ls []*dto.LabelPair) bool {
	for i := 1; i < len(ls); i++ {
		if ls[i].GetName() < ls[i-1].GetName() {
			return false
		}
	}
	return true
}

func compareLabelPairs(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) }

// compareMetrics is client_golang's metric order (and so the Pushgateway's):
// fewer labels first, then label values compared position by position.
func compareMetrics(a, b *dto.Metric) int {
	if len(a.Label) != len(b.Label) {
		return len(a.Label) - len(b.Label)
	}
	for i, lp := range a.Label {
		if c := strings.Compare(lp.GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return 0
}

// render produces the family value: text lines and series hashes (one
// allocation, keepText) and, only for metrics the text cannot carry
// exactly, the protobuf bytes.
func (b *builder) render(mf *dto.MetricFamily, ms []*dto.Metric, t time.Time) (*family, error) {
	f := newFamily(mf, mf.GetName(), mf.GetType())
	f.setPushTime(t)
	f.set(famUTF8, hasUTF8Names(f.name, ms))
	text, err := b.renderText(f.name, f.typ(), ms, f.utf8())
	if err != nil {
		return nil, err
	}
	hashes := f.keepText(lineSeq{text: text, codes: &b.codes}, len(ms))
	exact, infAdded := textExactAll(f.typ(), ms)
	f.set(famInfAdded, infAdded)
	if !exact || f.utf8() {
		if err := b.keepProtobuf(f, ms); err != nil {
			return nil, err
		}
	} else {
		f.setCreated(createdTimes(f.typ(), ms))
	}
	for i, m := range ms {
		hashes[i] = b.hash(f.name, m.Label)
	}
	f.setHashes(hashes)
	return f, nil
}

// keepProtobuf encodes ms, the metrics of f in order, and keeps them as
// f's protobuf rendering: for families whose text does not carry every
// field.
func (b *builder) keepProtobuf(f *family, ms []*dto.Metric) error {
	pb, err := b.enc.appendTo(make([]byte, 0, b.enc.size(ms)), ms)
	if err != nil {
		return fmt.Errorf("encode family %q: %w", f.name, err)
	}
	f.pb.Store(&pb)
	return nil
}

// familyIDs hands out family.id.
var familyIDs atomic.Uint64

// cloneString returns a copy of *s that shares no memory with it, or nil.
func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	c := strings.Clone(*s)
	return &c
}

// newFamily returns a family value with mf's header and no data.
func newFamily(mf *dto.MetricFamily, name string, typ dto.MetricType) *family {
	f := &family{
		id:   familyIDs.Add(1),
		name: name, help: mf.GetHelp(),
		unit: cloneString(mf.Unit),
	}
	f.flags.Store(uint32(typ) << famTypeShift) //nolint:gosec // the enum's values are small
	f.set(famHelp, mf.Help != nil)
	return f
}

// renderText returns the text 0.0.4 sample lines of ms, as expfmt writes
// them, in a buffer that is only valid until the next call. Families with
// UTF-8 names go through expfmt, the rest through its faster equivalents
// (encode.go; TestComplexSamplesAreExpfmts).
func (b *builder) renderText(name string, typ dto.MetricType, ms []*dto.Metric, utf8Names bool) ([]byte, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	if hasSimpleText(typ) && !utf8Names { // expfmt quotes UTF-8 names
		b.text = appendTextSamples(b.text[:0], name, typ, ms)
		return b.text, nil
	}
	if !utf8Names {
		var ok bool
		if b.text, ok = appendComplexSamples(b.text[:0], name, typ, ms); ok {
			return b.text, nil
		}
	}
	b.buf.Reset()
	b.name, b.typ = name, typ
	b.tmp.Name, b.tmp.Type, b.tmp.Metric = &b.name, &b.typ, ms
	_, err := expfmt.MetricFamilyToText(&b.buf, &b.tmp)
	b.tmp.Metric = nil
	if err != nil {
		return nil, fmt.Errorf("render family %q: %w", name, err)
	}
	return dropFirstLine(b.buf.Bytes()), nil
}

// hash is the series hash: xxhash of the series as the text format writes
// it before the value, name{label="value",...} with the label pairs sorted
// and the values escaped. buildSimple hashes the line it renders anyway, so
// a series costs no key of its own. Equal series have equal hashes; a hit
// is always confirmed by comparing label sets.
func (b *builder) hash(name string, ls []*dto.LabelPair) uint64 {
	b.key = appendSeriesKey(b.key[:0], name, ls)
	return xxhash.Sum64(b.key)
}

// appendSeriesKey appends the bytes a series hash is computed over: the
// start of the series' text line, up to the space before the value.
func appendSeriesKey(b []byte, name string, ls []*dto.LabelPair) []byte {
	b = append(b, name...)
	for i, lp := range ls {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, lp.GetName()...)
		b = append(b, '=', '"')
		b = appendEscaped(b, lp.GetValue(), true)
		b = append(b, '"')
	}
	if len(ls) > 0 {
		b = append(b, '}')
	}
	return b
}

// duplicatesWithin finds metrics of one family with the same label set.
// The hashes are sorted, so a duplicate shows as two equal neighbours; only
// then are the metrics looked at.
func (b *builder) duplicatesWithin(out *built, hs []uint64) []error {
	var errs []error
	for i := 1; i < len(hs); i++ {
		if hs[i] != hs[i-1] || (i > 1 && hs[i] == hs[i-2]) {
			continue
		}
		errs = append(errs, b.confirmDuplicates(out, hs[i])...)
	}
	return errs
}

// confirmDuplicates reports every metric with hash h whose label set an
// earlier metric of the same family already has.
func (b *builder) confirmDuplicates(out *built, h uint64) []error {
	var seen []*dto.Metric
	var errs []error
	for _, m := range out.metrics {
		if b.hash(out.name, m.Label) != h {
			continue
		}
		if slices.ContainsFunc(seen, func(o *dto.Metric) bool { return sameLabels(o.Label, m.Label) }) {
			errs = append(errs, errDuplicate(out.name, m))
			continue
		}
		seen = append(seen, m)
	}
	return errs
}

// sameLabels compares two label sets sorted by name.
func sameLabels(a, b []*dto.LabelPair) bool {
	return slices.EqualFunc(a, b, func(x, y *dto.LabelPair) bool {
		return x.GetName() == y.GetName() && x.GetValue() == y.GetValue()
	})
}
