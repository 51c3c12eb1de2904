package ingest

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/internal/textfloat"
)

// scanText is the push path's parser of text 0.0.4. It reads what
// clients send (client_golang, the Python and Java clients, prom-client,
// node_exporter's textfile collector) in one pass over the body and
// builds the same families expfmt's TextParser builds, with a handful of
// allocations instead of about 25 per series: every metric, label pair,
// value and bucket of the push is carved out of a few slabs, and label
// names and values are substrings of one copy of the body.
//
// It reports false, and returns nothing, for anything outside that
// grammar: every error, quoted (UTF-8) names, names inside the braces,
// gauge histograms, escapes it does not know, non-ASCII TYPE lines.
// decodeText then hands the body to expfmt, which accepts or refuses it
// with the Pushgateway's own error text. So expfmt stays the reference:
// whatever scanText accepts, expfmt accepts with equal families
// (FuzzScanText), and whatever it declines, expfmt decides.
//
// Family names and HELP texts are copied out of the body: the store keeps
// them, and a substring would keep the whole body alive. A pooled parser
// keeps the copies (interned) for the next pushes of the same families.
//
// One known difference: expfmt joins the lines of a histogram or summary
// by a 64-bit FNV-1a hash of their labels without comparing the labels,
// so two label sets crafted to collide (about 2^32 work) become one
// metric there and two here, as they should.
func scanText(b []byte) (map[string]*dto.MetricFamily, bool) {
	p := textParser{clientSlabs: clientSlabs{s: string(b)}}
	p.size(b)
	return p.parse()
}

// textParsers keeps parsers between pushes, so that a push of the usual
// size carves its families from the slabs, label slice and maps of an
// earlier one instead of allocating them: the garbage of building client
// structs for every push was most of the push path's allocations, and the
// collector's work grew with it.
var textParsers = sync.Pool{New: func() any { return &textParser{clientSlabs: clientSlabs{names: newInterned()}} }}

// maxPooledBytes is the most memory a parser (or protobuf decoder) may
// hold to go back to its pool: its chunks, label slice and family map,
// whatever shape of push made them grow. No budget is charged for pooled
// memory, so it is bounded here: at most this much per push in flight
// (and the pool lets go of idle parsers within two collections). One rare
// big push does not pin its slabs; the usual pushes of a few hundred lines
// stay far below it.
const maxPooledBytes = 1 << 20

// mapEntryBytes is what a family map holds per entry, from above: the
// key's header, the pointer and the map's own slack.
const mapEntryBytes = 64

// scanTextPooled is scanText with a parser from textParsers. The families
// are the parser's: the caller hands them back with release once nothing
// uses them (the store keeps no client structs), and must not touch them
// afterwards.
//
// With stable, b stays unchanged for as long as the families live (a
// *Body), so label names and values are substrings of b itself rather
// than of a copy; family names and HELP texts are copied out as always.
func scanTextPooled(b []byte, stable bool) (fams map[string]*dto.MetricFamily, release func(), ok bool) {
	p := textParsers.Get().(*textParser)
	if p.releaser == nil {
		p.releaser = p.release
	}
	if stable {
		p.s = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		p.s = string(b)
	}
	p.size(b)
	fams, ok = p.parse()
	if !ok {
		p.release()
		return nil, nil, false
	}
	return fams, p.releaser, true
}

// release zeroes what the parser handed out and puts it back in
// textParsers, unless it holds more than maxPooledBytes. With
// poisonReleased (tests), it poisons what it would reuse instead.
func (p *textParser) release() {
	if poisonReleased.Load() {
		p.poison()
		return
	}
	// A cleared map keeps its room: count the most entries it had.
	p.mapped = max(p.mapped, len(p.fams)+len(p.complex))
	if p.footprint() > maxPooledBytes {
		return
	}
	p.reuseSlabs()
	p.stamps.reuse()
	clear(p.complex)
	clear(p.hists)
	p.hists = p.hists[:0]
	clear(p.line)
	p.line = p.line[:0]
	p.pos = 0
	p.last, p.lastName, p.lastSum, p.lastCnt = nil, "", false, false
	textParsers.Put(p)
}

// footprint is the memory the parser would keep in its pool.
func (p *textParser) footprint() int {
	return p.slabBytes() + p.stamps.bytes() + 8*(cap(p.line)+cap(p.hists))
}

// textParser is the state of one scanText call.
type textParser struct {
	clientSlabs
	pos int

	stamps slab[int64]
	// last is the family of the previous sample line, and lastName its
	// name there: consecutive lines of a family skip the lookup.
	last     *dto.MetricFamily
	lastName string
	lastSum  bool
	lastCnt  bool

	// Histograms and summaries: their metrics by family and label set,
	// and every histogram, to normalise at the end.
	complex map[uint64]complexMetric
	hists   []*dto.Histogram

	line []*dto.LabelPair // the labels of the current line
}

// complexMetric is a histogram or summary metric and its family.
type complexMetric struct {
	mf *dto.MetricFamily
	m  *dto.Metric
}

// size sizes the slabs for b: every sample is a line, and every label pair
// has an '='. A parser from textParsers keeps its chunks where they are
// big enough.
func (p *textParser) size(b []byte) {
	lines := bytes.Count(b, []byte{'\n'}) + 1
	pairs := bytes.Count(b, []byte{'='})
	p.metrics.reserve(lines)
	p.metricPtrs.reserve(lines)
	p.floats.reserve(lines)
	p.pairs.reserve(pairs)
	p.strs.reserve(2 * pairs)
	if cap(p.labels) < pairs {
		p.labels = make([]*dto.LabelPair, 0, pairs)
	}
	if p.fams == nil {
		p.fams = make(map[string]*dto.MetricFamily, 16)
	}
}

func (p *textParser) parse() (map[string]*dto.MetricFamily, bool) {
	for {
		p.skipBlank()
		if p.pos == len(p.s) {
			break // a last line of blanks, or none
		}
		var ok bool
		switch c := p.s[p.pos]; {
		case c == '\n':
			p.pos++
			ok = true
		case c == '#':
			p.pos++
			ok = p.comment()
		case nameStart(c):
			ok = p.sample()
		}
		if !ok {
			return nil, false
		}
	}
	for name, mf := range p.fams {
		if len(mf.Metric) == 0 {
			delete(p.fams, name)
		}
	}
	for _, h := range p.hists {
		normalizeHistogram(h)
	}
	return p.fams, true
}

// comment reads a comment line after its '#': HELP and TYPE set the
// family's, anything else is skipped.
func (p *textParser) comment() bool {
	p.last = nil // a HELP or TYPE line may make a family
	p.skipBlank()
	if p.at('\n') {
		p.pos++
		return true
	}
	kw := p.token()
	if p.at('\n') {
		p.pos++
		return true
	}
	if kw != "HELP" && kw != "TYPE" {
		i := strings.IndexByte(p.s[p.pos:], '\n')
		if i < 0 {
			return false
		}
		p.pos += i + 1
		return true
	}
	p.skipBlank()
	if p.pos == len(p.s) || !nameStart(p.s[p.pos]) {
		if p.at('\n') {
			p.pos++
			return true
		}
		return false
	}
	name := p.name()
	if p.at('\n') {
		p.pos++
		return true
	}
	if !p.atBlank() {
		return false
	}
	mf, _, _ := p.family(name)
	p.skipBlank()
	if p.at('\n') {
		p.pos++
		return true
	}
	if kw == "HELP" {
		return p.help(mf)
	}
	return p.typ(mf)
}

// help reads the rest of the line as mf's HELP.
func (p *textParser) help(mf *dto.MetricFamily) bool {
	if mf.Help != nil {
		return false
	}
	end := strings.IndexByte(p.s[p.pos:], '\n')
	if end < 0 {
		return false
	}
	raw := p.s[p.pos : p.pos+end]
	p.pos += end + 1
	h := raw
	if strings.IndexByte(raw, '\\') >= 0 {
		var ok bool
		if h, ok = unescapeText(raw); !ok {
			return false
		}
	}
	mf.Help = p.str(p.names.get(h))
	return true
}

// Metric types by their TYPE line; gauge histograms are left to expfmt.
var textTypes = map[string]dto.MetricType{
	"COUNTER": dto.MetricType_COUNTER, "GAUGE": dto.MetricType_GAUGE, "UNTYPED": dto.MetricType_UNTYPED,
	"SUMMARY": dto.MetricType_SUMMARY, "HISTOGRAM": dto.MetricType_HISTOGRAM,
}

// typ reads the rest of the line as mf's TYPE, in any case of ASCII.
func (p *textParser) typ(mf *dto.MetricFamily) bool {
	if mf.Type != nil {
		return false
	}
	end := strings.IndexByte(p.s[p.pos:], '\n')
	if end < 0 || end > len("HISTOGRAM") {
		return false
	}
	var up [len("HISTOGRAM")]byte
	for i := range end {
		c := p.s[p.pos+i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	t, ok := textTypes[string(up[:end])]
	if !ok {
		return false
	}
	p.pos += end + 1
	mf.Type = p.types.new()
	*mf.Type = t
	return true
}

// sample reads one sample line, which starts with a metric name.
func (p *textParser) sample() bool {
	name := p.name()
	if p.pos == len(p.s) {
		return false
	}
	if c := p.s[p.pos]; c != ' ' && c != '\t' && c != '{' {
		return false
	}
	var mf *dto.MetricFamily
	var isCount, isSum bool
	if p.last != nil && name == p.lastName {
		mf, isCount, isSum = p.last, p.lastCnt, p.lastSum
	} else {
		mf, isCount, isSum = p.family(name)
		p.last, p.lastName, p.lastCnt, p.lastSum = mf, name, isCount, isSum
	}
	if mf.Type == nil {
		mf.Type = p.types.new()
		*mf.Type = dto.MetricType_UNTYPED
	}
	typ := *mf.Type
	p.skipBlank()
	// The labels; le and quantile are the bucket's and the quantile's.
	p.line = p.line[:0]
	bound, quantile := math.NaN(), math.NaN()
	if p.at('{') {
		p.pos++
		for {
			p.skipBlank()
			if p.at('}') {
				p.pos++
				break
			}
			if p.pos == len(p.s) || !labelStart(p.s[p.pos]) {
				return false
			}
			ln := p.labelName()
			p.skipBlank()
			if !p.at('=') {
				return false
			}
			p.pos++
			p.skipBlank()
			if !p.at('"') {
				return false
			}
			p.pos++
			lv, ok := p.labelValue()
			if !ok {
				return false
			}
			switch {
			case ln == "__name__":
				return false
			case typ == dto.MetricType_HISTOGRAM && ln == "le":
				if bound, ok = parseTextFloat(lv); !ok {
					return false
				}
			case typ == dto.MetricType_SUMMARY && ln == "quantile":
				if quantile, ok = parseTextFloat(lv); !ok {
					return false
				}
			default:
				for _, lp := range p.line {
					if *lp.Name == ln {
						return false // a duplicate label name
					}
				}
				lp := p.pairs.new()
				lp.Name, lp.Value = p.str(ln), p.str(lv)
				p.line = append(p.line, lp)
			}
			p.skipBlank()
			switch {
			case p.at(','):
				p.pos++
			case p.at('}'):
			default:
				return false
			}
		}
		p.skipBlank()
	}
	// The value, and perhaps a timestamp.
	tok := p.token()
	v, ok := parseTextFloat(tok)
	if !ok || p.pos == len(p.s) {
		return false
	}
	var ts *int64
	if p.s[p.pos] != '\n' {
		p.skipBlank()
		n, err := strconv.ParseInt(p.token(), 10, 64)
		if err != nil || !p.at('\n') {
			return false
		}
		ts = p.stamps.new()
		*ts = n
	}
	p.pos++ // the newline
	m := p.metric(mf, typ)
	if m == nil {
		return false
	}
	if ts != nil {
		m.TimestampMs = ts
	}
	return p.setValue(m, mf, typ, v, bound, quantile, isCount, isSum)
}

// metric returns the metric the current line is a sample of: a new one,
// or for histograms and summaries the one with the same labels if an
// earlier line made it. It returns nil when two label sets hash alike.
func (p *textParser) metric(mf *dto.MetricFamily, typ dto.MetricType) *dto.Metric {
	var key uint64
	if typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY {
		key = p.labelSetKey(*mf.Name)
		if c, ok := p.complex[key]; ok {
			if c.mf != mf || !sameLabelSet(c.m.Label, p.line) {
				return nil
			}
			return c.m
		}
	}
	m := p.metrics.new()
	if len(p.line) > 0 {
		start := len(p.labels)
		p.labels = append(p.labels, p.line...)
		m.Label = p.labels[start:len(p.labels):len(p.labels)]
	}
	mf.Metric = p.metricPtrs.add(mf.Metric, m)
	if typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY {
		if p.complex == nil {
			p.complex = map[uint64]complexMetric{}
		}
		p.complex[key] = complexMetric{mf, m}
	}
	return m
}

// setValue records v on m as expfmt does for the family's type.
func (p *textParser) setValue(m *dto.Metric, mf *dto.MetricFamily, typ dto.MetricType, v, bound, quantile float64, isCount, isSum bool) bool {
	switch typ {
	case dto.MetricType_COUNTER:
		m.Counter = p.counters.new()
		m.Counter.Value = p.float(v)
	case dto.MetricType_GAUGE:
		m.Gauge = p.gauges.new()
		m.Gauge.Value = p.float(v)
	case dto.MetricType_UNTYPED:
		m.Untyped = p.untyped.new()
		m.Untyped.Value = p.float(v)
	case dto.MetricType_SUMMARY:
		if m.Summary == nil {
			m.Summary = &dto.Summary{}
		}
		switch {
		case isCount:
			m.Summary.SampleCount = p.uint(uint64(v))
		case isSum:
			m.Summary.SampleSum = p.float(v)
		case !math.IsNaN(quantile):
			m.Summary.Quantile = append(m.Summary.Quantile, &dto.Quantile{Quantile: p.float(quantile), Value: p.float(v)})
		}
	case dto.MetricType_HISTOGRAM:
		h := m.Histogram
		if h == nil {
			h = p.histograms.new()
			m.Histogram = h
			p.hists = append(p.hists, h)
		}
		switch {
		case isCount:
			if !p.count(v, &h.SampleCount, &h.SampleCountFloat) {
				return false
			}
		case isSum:
			h.SampleSum = p.float(v)
		case !math.IsNaN(bound):
			bk := p.buckets.new()
			bk.UpperBound = p.float(bound)
			if !p.count(v, &bk.CumulativeCount, &bk.CumulativeCountFloat) {
				return false
			}
			h.Bucket = p.bucketPtrs.add(h.Bucket, bk)
		}
	default:
		return false
	}
	return true
}

// family returns the family a sample or comment of name belongs to, as
// expfmt finds it: the family of that name; else, for a name ending in
// _count or _sum (and _bucket), the summary (histogram) it belongs to;
// else a new family.
func (p *textParser) family(name string) (mf *dto.MetricFamily, isCount, isSum bool) {
	if mf := p.fams[name]; mf != nil {
		return mf, false, false
	}
	isCount = len(name) > 6 && strings.HasSuffix(name, "_count")
	isSum = len(name) > 4 && strings.HasSuffix(name, "_sum")
	base := name
	switch {
	case isCount:
		base = name[:len(name)-6]
	case isSum:
		base = name[:len(name)-4]
	}
	if mf := p.fams[base]; mf != nil && mf.GetType() == dto.MetricType_SUMMARY {
		return mf, isCount, isSum
	}
	if len(name) > 7 && strings.HasSuffix(name, "_bucket") {
		base = name[:len(name)-7]
	}
	if mf := p.fams[base]; mf != nil && mf.GetType() == dto.MetricType_HISTOGRAM {
		return mf, isCount, isSum
	}
	n := p.names.get(name)
	mf = p.families.new()
	mf.Name = p.str(n)
	p.fams[n] = mf
	return mf, false, false
}

// labelSetKey hashes the family name and the current line's labels,
// whatever their order: the sum of one hash per pair.
func (p *textParser) labelSetKey(family string) uint64 {
	key := xxhash.Sum64String(family)
	var d xxhash.Digest
	for _, lp := range p.line {
		d.Reset()
		_, _ = d.WriteString(*lp.Name)
		_, _ = d.Write([]byte{0xff})
		_, _ = d.WriteString(*lp.Value)
		key += d.Sum64()
	}
	return key
}

// sameLabelSet reports whether a and b hold the same pairs, in any order.
func sameLabelSet(a, b []*dto.LabelPair) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if *x.Name == *y.Name {
				found = *x.Value == *y.Value
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// count records a histogram count as expfmt does: a value that is an
// integer as the integer count, any other as the float count, which may
// not be negative.
func (p *textParser) count(v float64, integer **uint64, float **float64) bool {
	if u := uint64(v); v == float64(u) {
		*integer = p.uint(u)
		return true
	}
	if v < 0 {
		return false
	}
	*float = p.float(v)
	return true
}

func (p *textParser) float(v float64) *float64 {
	f := p.floats.new()
	*f = v
	return f
}

func (p *textParser) uint(u uint64) *uint64 {
	i := p.uints.new()
	*i = u
	return i
}

// str returns a pointer to a copy of the string header s, from a slab.
func (p *textParser) str(s string) *string {
	ps := p.strs.new()
	*ps = s
	return ps
}

func (p *textParser) at(c byte) bool { return p.pos < len(p.s) && p.s[p.pos] == c }

func (p *textParser) atBlank() bool {
	return p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t')
}

func (p *textParser) skipBlank() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// token returns the bytes up to the next blank, tab or newline (or the
// end).
func (p *textParser) token() string {
	start := p.pos
	for p.pos < len(p.s) {
		if c := p.s[p.pos]; c == ' ' || c == '\t' || c == '\n' {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos]
}

// name returns the metric name at pos, whose first byte is a name start.
func (p *textParser) name() string {
	start := p.pos
	p.pos++
	for p.pos < len(p.s) && (labelStart(p.s[p.pos]) || isDigit(p.s[p.pos]) || p.s[p.pos] == ':') {
		p.pos++
	}
	return p.s[start:p.pos]
}

// labelName returns the label name at pos, whose first byte is a label
// name start.
func (p *textParser) labelName() string {
	start := p.pos
	p.pos++
	for p.pos < len(p.s) && (labelStart(p.s[p.pos]) || isDigit(p.s[p.pos])) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// labelValue returns the label value after its opening quote and moves
// past the closing one. It fails on a newline, an unknown escape, invalid
// UTF-8 or the end of the body.
func (p *textParser) labelValue() (string, bool) {
	start, escaped := p.pos, false
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case '"':
			v := p.s[start:p.pos]
			p.pos++
			if escaped {
				var ok bool
				if v, ok = unescapeText(v); !ok {
					return "", false
				}
			}
			return v, utf8.ValidString(v)
		case '\n':
			return "", false
		case '\\':
			escaped = true
			p.pos++ // the escaped byte is checked by unescape
		}
		p.pos++
	}
	return "", false
}

// unescapeText resolves \\, \n and \" in s. A raw newline or another escape
// fails, as in expfmt.
func unescapeText(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n':
			return "", false
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", false
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			b.WriteByte('"')
		default:
			return "", false
		}
	}
	return b.String(), true
}

// parseTextFloat parses a sample value or an le or quantile label as
// expfmt does: whole numbers and short decimals exactly by textfloat,
// anything else by strconv, which expfmt uses.
func parseTextFloat(s string) (float64, bool) {
	if f, n, ok := textfloat.Scan(s); ok && n == len(s) {
		return f, true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 'p' || c == 'P' || c == '_' {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

func nameStart(c byte) bool { return labelStart(c) || c == ':' }

func labelStart(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// normalizeHistogram makes a histogram's counts all float or all integer,
// as expfmt does once a text histogram is read.
func normalizeHistogram(h *dto.Histogram) {
	anyFloat := h.GetSampleCountFloat() != 0
	for _, b := range h.GetBucket() {
		anyFloat = anyFloat || b.GetCumulativeCountFloat() != 0
	}
	if !anyFloat {
		return
	}
	if h.GetSampleCountFloat() == 0 {
		f := float64(h.GetSampleCount())
		h.SampleCountFloat, h.SampleCount = &f, nil
	}
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCountFloat() == 0 {
			f := float64(b.GetCumulativeCount())
			b.CumulativeCountFloat, b.CumulativeCount = &f, nil
		}
	}
}
