package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Format is an exposition format and the escaping scheme of the names it
// writes. The plain constants write names as they were pushed (escaping
// allow-utf-8); WithEscaping selects another scheme.
type Format int

// Exposition formats.
const (
	FormatText        Format = iota // text/plain; version=0.0.4 or 1.0.0
	FormatProtoDelim                // delimited protobuf
	FormatOpenMetrics               // OpenMetrics 1.0.0
)

// formatTypeBits holds the format; the escaping scheme sits above it.
const formatTypeBits = 4

// WithEscaping returns f writing names escaped with s (model.NoEscaping:
// as pushed).
func (f Format) WithEscaping(s model.EscapingScheme) Format {
	return f.Type() | Format(s)<<formatTypeBits
}

// Type returns f without its escaping scheme.
func (f Format) Type() Format { return f & (1<<formatTypeBits - 1) }

// Escaping returns the escaping scheme of f's names.
func (f Format) Escaping() model.EscapingScheme {
	return model.EscapingScheme(f >> formatTypeBits)
}

// String returns the name of the format.
func (f Format) String() string {
	if esc := f.Escaping(); esc != model.NoEscaping {
		return f.Type().String() + "; escaping=" + esc.String()
	}
	switch f {
	case FormatText:
		return "text"
	case FormatProtoDelim:
		return "protobuf-delimited"
	case FormatOpenMetrics:
		return "openmetrics"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// scrapeBufferSize is the write buffer of a scrape: big enough that the
// many small HELP/TYPE headers do not each become a write, while family
// bodies larger than it go straight to w.
const scrapeBufferSize = 64 << 10

// WriteExposition writes every group's families merged by family name (sorted)
// together with extra (the gateway's own families, already gathered) in f.
// It holds the store lock only to copy out references to pre-rendered bytes.
//
// Per family name the output is one HELP/TYPE header and then every group's
// metrics, groups in key order; a group's metrics are in client_golang's
// order. HELP is the one of the first group (in key order) whose family has
// metrics; an own family of the same name comes first and its HELP wins.
// Families without metrics are left out. OpenMetrics output ends with
// "# EOF". extra is not modified.
//
// With an escaping scheme other than model.NoEscaping, a family whose name
// or label names the scheme changes is decoded, escaped and rendered again
// (the slow path; see escape.go); the others are written as they are.
func (s *Store) WriteExposition(w io.Writer, f Format, extra []*dto.MetricFamily) error {
	return s.writeExposition(w, nil, f, extra)
}

// writeExposition writes the exposition to w; with gz (which w then is),
// the text of stored families goes to gz as their own segments.
func (s *Store) writeExposition(w io.Writer, gz *gzipStream, f Format, extra []*dto.MetricFamily) error {
	if f.Type() > FormatOpenMetrics || f.Escaping() > model.ValueEncodingEscaping {
		return fmt.Errorf("write exposition: unknown format %d", int(f))
	}
	v := s.view()
	defer s.putView(v)
	own := sortedByName(extra)
	size := scrapeBufferSize
	if gz != nil {
		size = 4096 // gz buffers what it compresses
	}
	e := &encoder{w: bufio.NewWriterSize(w, size), gz: gz, format: f.Type(), escaping: f.Escaping(), store: s}
	if e.format == FormatOpenMetrics {
		e.exposed = exposedNames(v.names, own)
	}
	var err error
	i, j := 0, 0
	for err == nil && (i < len(v.names) || j < len(own)) {
		switch {
		case j == len(own) || (i < len(v.names) && v.names[i] < own[j].GetName()):
			e.mems = v.memberData(i)
			err = e.pushed(v.members(i))
			i++
		case i == len(v.names) || own[j].GetName() < v.names[i]:
			e.mems = nil
			err = e.merged(own[j], nil)
			j++
		default:
			e.mems = v.memberData(i)
			err = e.merged(own[j], v.members(i))
			i++
			j++
		}
	}
	if err == nil && f.Type() == FormatOpenMetrics {
		_, err = e.w.WriteString("# EOF\n")
	}
	if err != nil {
		return fmt.Errorf("write exposition: %w", err)
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("write exposition: %w", err)
	}
	return nil
}

// view is what a scrape copies out under the lock: per family name, in
// byte order, the family values of its groups in key order. Family values
// are immutable, so the bytes can be written after the lock is released.
type view struct {
	names []string
	ends  []int // fams[ends[i-1]:ends[i]] belong to names[i]
	fams  []*family
	mems  []member // mems[j]: what the slot of fams[j] holds of it and its group
}

func (v *view) members(i int) []*family {
	start := 0
	if i > 0 {
		start = v.ends[i-1]
	}
	return v.fams[start:v.ends[i]]
}

func (v *view) memberData(i int) []member {
	start := 0
	if i > 0 {
		start = v.ends[i-1]
	}
	return v.mems[start:v.ends[i]]
}

// view copies the scrape's view out under the lock, into buffers an
// earlier scrape gave back (putView): 24 bytes a family, a quarter of a
// megabyte for the benchmark's 1,000 groups.
func (s *Store) view() *view {
	v, _ := s.views.Get().(*view)
	if v == nil {
		v = &view{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.sortedNamesLocked()
	x := s.exposer()
	v.names = names
	v.ends = slices.Grow(v.ends[:0], len(names))[:len(names)]
	v.fams = slices.Grow(v.fams[:0], s.nFamilies)
	v.mems = slices.Grow(v.mems[:0], s.nFamilies)
	for i, n := range names {
		for _, sl := range s.names[n].sorted() {
			if x.exposes(sl.g) {
				v.fams = append(v.fams, sl.fam)
				v.mems = append(v.mems, sl.member)
			}
		}
		v.ends[i] = len(v.fams)
	}
	return v
}

// putView gives v's buffers back for the next scrape, holding no family.
// The pool keeps at most one view per scrape that ran at the same time,
// each as large as the store's view was then, until the garbage collector
// empties it: the memory those scrapes held anyway.
func (s *Store) putView(v *view) {
	clear(v.fams)
	v.names, v.ends, v.fams, v.mems = nil, v.ends[:0], v.fams[:0], v.mems[:0]
	s.views.Put(v)
}

// sortedByName returns the non-nil families of mfs sorted by name, in a new
// slice.
func sortedByName(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(mfs))
	for _, mf := range mfs {
		if mf != nil {
			out = append(out, mf)
		}
	}
	slices.SortStableFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// encoder writes the merged families of one scrape.
type encoder struct {
	w        *bufio.Writer
	gz       *gzipStream // a gzipped text scrape writes stored families here
	mems     []member    // of the stored families being written (view.mems)
	format   Format      // without escaping
	escaping model.EscapingScheme
	store    *Store
	// exposed holds every family name of an OpenMetrics scrape, for
	// omDemoted.
	exposed map[string]bool
	hdr     []byte // scratch for headers
	lines   []byte // scratch for front-coded text, decoded
	scratch renderScratch
	size    []byte // scratch for a message length
}

// pushed writes a family name that only groups have. The first group with
// metrics decides HELP (and the protobuf unit).
func (e *encoder) pushed(fams []*family) error {
	i := slices.IndexFunc(fams, func(f *family) bool { return f.series() > 0 })
	if i < 0 {
		return nil
	}
	lead := fams[i]
	if e.escapes(lead.name, e.mems) {
		return e.escaped(lead.header(), fams)
	}
	switch e.format {
	case FormatProtoDelim:
		return e.protoFamily(appendProtoHeader(e.hdr[:0], lead), fams)
	case FormatOpenMetrics:
		e.hdr = appendOMHeader(e.hdr[:0], lead.name, lead.typ(), lead.help, lead.hasHelp(), e.omDemoted(lead.name, lead.typ()))
		return e.omFamily(fams)
	default:
		e.hdr = appendTextHeader(e.hdr[:0], lead.name, lead.typ(), lead.help, lead.hasHelp())
		return e.textFamily(fams)
	}
}

// merged writes an own family followed by the groups' families of the same
// name, under the own HELP and TYPE. Config.Reserved keeps the types equal;
// if they differ anyway (an own family missing from Reserved), the groups'
// families are left out rather than breaking the scrape.
func (e *encoder) merged(own *dto.MetricFamily, fams []*family) error {
	if len(fams) > 0 && fams[0].typ() != own.GetType() {
		e.store.logger.Warn("pushed family has another type than the own family of the same name; not exposed",
			"family", own.GetName(), "own_type", own.GetType(), "pushed_type", fams[0].typ())
		fams, e.mems = nil, nil
	}
	if len(own.Metric) == 0 && !slices.ContainsFunc(fams, func(f *family) bool { return f.series() > 0 }) {
		return nil
	}
	if e.escapes(own.GetName(), e.mems) || ownEscapes(own, e.escaping) {
		return e.escaped(own, fams)
	}
	switch e.format {
	case FormatProtoDelim:
		hdr, err := proto.MarshalOptions{}.MarshalAppend(e.hdr[:0], own)
		if err != nil {
			return fmt.Errorf("encode own family %q: %w", own.GetName(), err)
		}
		return e.protoFamily(hdr, fams)
	case FormatOpenMetrics:
		e.hdr = appendOMHeader(e.hdr[:0], own.GetName(), own.GetType(), own.GetHelp(), own.Help != nil, e.omDemoted(own.GetName(), own.GetType()))
		if len(own.Metric) > 0 {
			body, err := openMetricsBody(own)
			if err != nil {
				return err
			}
			e.hdr = append(e.hdr, body...)
		}
		return e.omFamily(fams)
	default:
		e.hdr = e.hdr[:0]
		if len(own.Metric) == 0 {
			e.hdr = appendTextHeader(e.hdr, own.GetName(), own.GetType(), own.GetHelp(), own.Help != nil)
		} else if b, ok := appendOwnText(e.hdr, own); ok {
			e.hdr = b
		} else if _, err := expfmt.MetricFamilyToText(e.w, own); err != nil {
			return err
		}
		return e.textFamily(fams)
	}
}

// textFamily writes e.hdr and the text bodies of fams.
func (e *encoder) textFamily(fams []*family) error {
	if _, err := e.w.Write(e.hdr); err != nil {
		return err
	}
	if e.gz != nil {
		if err := e.w.Flush(); err != nil {
			return err
		}
		return e.gz.chunks(fams, e.mems)
	}
	for _, f := range fams {
		if _, err := e.w.Write(f.text(&e.lines)); err != nil {
			return err
		}
	}
	return nil
}

// omFamily writes e.hdr and the OpenMetrics bodies of fams, rendering the
// ones not rendered yet.
func (e *encoder) omFamily(fams []*family) error {
	if _, err := e.w.Write(e.hdr); err != nil {
		return err
	}
	for _, f := range fams {
		body, err := f.openMetrics(&e.store.cache)
		if err != nil {
			return err
		}
		if _, err := e.w.Write(body); err != nil {
			return err
		}
	}
	return nil
}

// protoFamily writes one length-delimited MetricFamily message made of hdr
// (an encoded MetricFamily, possibly with metrics) followed by the metric
// fields of fams: protobuf merges repeated fields of concatenated messages.
// A family value not scraped as protobuf before renders its fields in the
// first loop and keeps them (protobuf.go), so the second loop finds every
// one cached.
func (e *encoder) protoFamily(hdr []byte, fams []*family) error {
	n := len(hdr)
	for _, f := range fams {
		pb, err := f.protobufScratch(&e.store.cache, &e.scratch)
		if err != nil {
			return err
		}
		n += len(pb)
	}
	e.hdr = hdr // keep the scratch buffer, grown or not
	e.size = protowire.AppendVarint(e.size[:0], uint64(n))
	if _, err := e.w.Write(e.size); err != nil {
		return err
	}
	if _, err := e.w.Write(hdr); err != nil {
		return err
	}
	for _, f := range fams {
		pb, err := f.protobufScratch(&e.store.cache, &e.scratch)
		if err != nil {
			return err
		}
		if _, err := e.w.Write(pb); err != nil {
			return err
		}
	}
	return nil
}

// appendProtoHeader appends a MetricFamily message with f's name, help,
// type and unit and no metrics: the same bytes proto.Marshal writes.
func appendProtoHeader(b []byte, f *family) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, f.name)
	if f.hasHelp() {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, f.help)
	}
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(f.typ()))
	if f.unit != nil {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, *f.unit)
	}
	return b
}

// appendTextHeader appends the HELP (if set) and TYPE lines expfmt writes
// for a text 0.0.4 family.
func appendTextHeader(b []byte, name string, typ dto.MetricType, help string, hasHelp bool) []byte {
	return appendHeaderLines(b, name, textType(typ), help, hasHelp, false)
}

// appendOMHeader appends the HELP (if set) and TYPE lines expfmt writes for
// an OpenMetrics family: a counter's family name drops its _total suffix,
// and a counter without one, or a demoted one (omDemoted), is "unknown"
// under its whole name. The unit is never written: the OpenMetrics parser
// rejects a unit that is not a suffix of the name, and pushed units are
// not checked.
func appendOMHeader(b []byte, name string, typ dto.MetricType, help string, hasHelp, demoted bool) []byte {
	omName, omType := openMetricsType(name, typ)
	if demoted {
		omName, omType = name, "unknown"
	}
	return appendHeaderLines(b, omName, omType, help, hasHelp, true)
}

// appendHeaderLines appends "# HELP name help" (if hasHelp) and
// "# TYPE name typ"; om selects OpenMetrics escaping of the help text.
func appendHeaderLines(b []byte, name, typ, help string, hasHelp, om bool) []byte {
	if hasHelp {
		b = append(b, "# HELP "...)
		b = appendName(b, name)
		b = append(b, ' ')
		b = appendEscaped(b, help, om)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = appendName(b, name)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// appendName appends a family name as the text formats write it in HELP
// and TYPE lines: as it is, or quoted if it is not a legacy name.
func appendName(b []byte, name string) []byte {
	if legacyName(name) {
		return append(b, name...)
	}
	b = append(b, '"')
	b = appendEscaped(b, name, true)
	return append(b, '"')
}

// exposedNames returns the set of the family names of a scrape.
func exposedNames(names []string, own []*dto.MetricFamily) map[string]bool {
	m := make(map[string]bool, len(names)+len(own))
	for _, n := range names {
		m[n] = true
	}
	for _, mf := range own {
		m[mf.GetName()] = true
	}
	return m
}

// omDemoted reports whether a counter N_total must be exposed in
// OpenMetrics as "unknown" under its whole name: as a counter its family
// would be N and would also own N_created, so a family of either name
// (go_memstats_alloc_bytes beside go_memstats_alloc_bytes_total) would
// make the exposition invalid ("Clashing name", or metadata after samples
// of the same family). The samples are the same either way.
func (e *encoder) omDemoted(name string, typ dto.MetricType) bool {
	base, ok := strings.CutSuffix(name, "_total")
	return ok && typ == dto.MetricType_COUNTER && (e.exposed[base] || e.exposed[base+"_created"])
}

// openMetricsBody renders an own family's OpenMetrics sample lines, without
// its HELP and TYPE lines.
func openMetricsBody(mf *dto.MetricFamily) ([]byte, error) {
	bare := &dto.MetricFamily{Name: mf.Name, Type: mf.Type, Metric: mf.Metric}
	var buf bytes.Buffer
	if _, err := expfmt.MetricFamilyToOpenMetrics(&buf, bare); err != nil {
		return nil, fmt.Errorf("render own family %q as OpenMetrics: %w", mf.GetName(), err)
	}
	return dropFirstLine(buf.Bytes()), nil
}

func textType(typ dto.MetricType) string {
	switch typ {
	case dto.MetricType_COUNTER:
		return "counter"
	case dto.MetricType_GAUGE:
		return "gauge"
	case dto.MetricType_SUMMARY:
		return "summary"
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return "histogram" // text 0.0.4 has no gauge histograms
	}
	return "untyped"
}

func openMetricsType(name string, typ dto.MetricType) (omName, omType string) {
	switch typ {
	case dto.MetricType_COUNTER:
		if base, ok := strings.CutSuffix(name, "_total"); ok {
			return base, "counter"
		}
		return name, "unknown"
	case dto.MetricType_GAUGE:
		return name, "gauge"
	case dto.MetricType_SUMMARY:
		return name, "summary"
	case dto.MetricType_HISTOGRAM:
		return name, "histogram"
	case dto.MetricType_GAUGE_HISTOGRAM:
		return name, "gaugehistogram"
	}
	return name, "unknown"
}

// appendEscaped escapes a HELP text as the exposition formats do: backslash
// and newline, and in OpenMetrics also the double quote.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for {
		i := 0
		for i < len(s) && s[i] != '\\' && s[i] != '\n' && (s[i] != '"' || !quote) {
			i++
		}
		b = append(b, s[:i]...) // most values have nothing to escape: one copy
		if i == len(s) {
			return b
		}
		switch s[i] {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, `\"`...)
		}
		s = s[i+1:]
	}
}
