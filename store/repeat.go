package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"time"
	"unsafe"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/internal/textfloat"
)

// Repeated pushes (docs/design.md, "Repeated pushes"). An edge node or a
// cron job pushes the same series every time; only the values change.
// Ingest hashes a body without its values (the shape, text or protobuf).
// Once the same shape has been applied the full way (parsed, checked,
// rendered) twice in a row, LearnRepeat records it against the families
// it wrote, after proving line by line that the body's series are the
// stored ones in the stored order. A later push of the same shape to the
// same group is then applied by ApplyRepeat: the stored lines are copied
// with the new values put in, and nothing is parsed, sorted, hashed or
// checked again, because nothing the checks look at has changed (the
// series, their types and HELP are the body's, which is the same). Any
// other write to the group voids the shape (commit), and any value the
// full way would treat apart (a count that is not a whole number, a -0 or a
// NaN that the text cannot carry exactly) sends the push the full way.

// Repeat is a push as ingest scanned it, for ApplyRepeat and LearnRepeat.
type Repeat struct {
	Key     GroupKey
	Replace bool // PUT
	// Shape identifies the body but for its sample values: equal shapes
	// are equal bodies but for the value tokens.
	Shape uint64
	// Values are the body's sample values, in the order of the text
	// lines the store keeps of it.
	Values []float64
	// Texts, when as long as Values, holds for some values the body's
	// token, a number written as the store writes it
	// (textfloat.Canonical): ApplyRepeat copies it into the line and does
	// not read the value.
	Texts [][]byte
	Time  time.Time
	TTL   time.Duration
}

// repeatShape is what a group keeps of the shape of its last push: the
// families the push wrote, in the order of the body, whose lines take the
// body's values in turn. It is valid while the group's version is
// version: every other write to the group drops it (commit), and until
// then the group's slots keep their order. Every group that is pushed
// text has one, so it is small: 64 bytes and two small arrays.
type repeatShape struct {
	hash    uint64
	version uint64
	// lines is the sum of the families' samples, len(Repeat.Values); of
	// a shape not learnt (families 0), the pushes of it LearnRepeat saw
	// after the first without learning it (learnDue).
	lines   uint32
	replace bool
	// pushTime is the index of push_time_seconds in the group's slots.
	pushTime uint8
	// families is how many families the body has (at most 256).
	families uint16
	// order holds, for each family in the order of the body, its index in
	// the group's slots, a byte each; then, only when a family has its
	// lines in the body in another order than the store writes them (a
	// body whose labels or series are in another order: prom-client's),
	// for each line in the store's order the body's index of it, two
	// bytes little-endian (lineOf). One string keeps the shape 64 bytes.
	order string
	// counts has bit i set when the i-th line holds a count
	// (isCountLine), lines counted in the store's order; nil when none
	// does.
	counts []uint64
}

// slot returns the index in the group's slots of the body's i-th family.
func (sh *repeatShape) slot(i int) int { return int(sh.order[i]) }

// permuted reports whether the body has lines in another order than the
// store (lineOf).
func (sh *repeatShape) permuted() bool { return len(sh.order) > int(sh.families) }

// lineOf returns the body's index of the store's i-th line of a permuted
// shape.
func (sh *repeatShape) lineOf(i int) int {
	o := int(sh.families) + 2*i
	return int(sh.order[o]) | int(sh.order[o+1])<<8
}

// ApplyRepeat applies r as new values for the series of the group's last
// push if r repeats its shape, and reports whether it did. When it did not
// (no shape, another shape, a value the full way must see, the group
// written meanwhile, or --store.max-bytes), the store is as it was and the
// caller applies the push the full way (Apply).
func (s *Store) ApplyRepeat(r Repeat) bool {
	if r.Key.IsZero() {
		return false
	}
	s.mu.Lock()
	g := s.groups[r.Key]
	var sh *repeatShape
	if g != nil {
		sh = g.shape
	}
	// A shape not learnt has no families, and counts pushes in lines.
	if sh == nil || sh.families == 0 || sh.hash != r.Shape || sh.replace != r.Replace || sh.version != g.version || int(sh.lines) != len(r.Values) {
		s.mu.Unlock()
		return false
	}
	b := s.builders.Get().(*builder)
	defer s.putBuilder(b)
	olds := b.repeatOlds[:0]
	for i := range int(sh.families) {
		k := sh.slot(i)
		if k >= len(g.slots) { // cannot be while the version holds
			s.mu.Unlock()
			return false
		}
		olds = append(olds, g.slots[k].fam)
	}
	if int(sh.pushTime) >= len(g.slots) { // cannot be while the version holds
		s.mu.Unlock()
		return false
	}
	oldPushTime := g.slots[sh.pushTime].fam
	olds = append(olds, oldPushTime) // last
	b.repeatOlds = olds              // resetRepeat clears what it holds
	version := g.version
	s.mu.Unlock()

	// The new data of every family, then the families; push_time_seconds
	// gets the push's time, as timeGauge makes it.
	spans := b.repeatSpans[:0]
	b.repeatText = b.repeatText[:0]
	first, ok := 0, true
	texts := r.Texts
	if len(texts) != len(r.Values) {
		texts = nil
	}
	values := r.Values
	if sh.permuted() {
		values, texts = b.permuted(sh, values, texts)
	}
	for i, f := range olds {
		var sp repeatSpan
		if i < len(olds)-1 {
			end := min(len(values), first+int(f.samples))
			var t [][]byte
			if texts != nil {
				t = texts[first:end]
			}
			sp, ok = b.patch(f, values[first:end], t, sh.counts, first)
			first += int(f.samples)
		} else {
			sp, ok = b.patch(f, []float64{unixSeconds(r.Time)}, nil, nil, 0)
		}
		if !ok {
			break
		}
		spans = append(spans, sp)
	}
	b.repeatSpans = spans
	if !ok {
		return false
	}
	news := b.withValues(olds, spans, r.Time)
	pushTime := news[len(news)-1] // last, as in olds
	olds, news = olds[:len(olds)-1], news[:len(news)-1]

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[r.Key] != g || g.version != version || g.shape != sh {
		return false // written meanwhile
	}
	if max := s.cfg.MaxBytes; max > 0 {
		grows := int64(0)
		for i, nf := range news {
			grows += int64(nf.textSize() - olds[i].textSize())
		}
		grows += int64(pushTime.textSize() - oldPushTime.textSize())
		if grows > 0 && s.nBytes+grows > max {
			return false // the full way refuses it, with the reason
		}
	}
	for i, nf := range news {
		s.setValues(g, sh.slot(i), nf)
	}
	s.setValues(g, int(sh.pushTime), pushTime)
	g.version = s.nextVersion()
	if r.Replace {
		g.replaced = g.version
	}
	sh.version = g.version
	s.setDeadlineLocked(g, deadlineOf(Push{Time: r.Time, TTL: r.TTL}))
	s.changedLocked()
	s.metrics.repeated.Inc()
	return true
}

// permuted returns values and texts (nil or as long) in the store's order
// of the lines of sh, a permuted shape: the i-th is the body's
// sh.lineOf(i)-th.
func (b *builder) permuted(sh *repeatShape, values []float64, texts [][]byte) ([]float64, [][]byte) {
	b.repeatValues = b.repeatValues[:0]
	for i := range values {
		b.repeatValues = append(b.repeatValues, values[sh.lineOf(i)])
	}
	if texts == nil {
		return b.repeatValues, nil
	}
	b.repeatTexts = b.repeatTexts[:0]
	for i := range texts {
		b.repeatTexts = append(b.repeatTexts, texts[sh.lineOf(i)])
	}
	return b.repeatValues, b.repeatTexts
}

// setValues puts f into slot k of g, whose family f repeats with other
// values: setFamily without what a repeat cannot change (the name and
// HELP, already interned; the type; the series and their index).
func (s *Store) setValues(g *group, k int, f *family) {
	sl := g.slots[k]
	s.nBytes += int64(f.textSize() - sl.fam.textSize())
	s.cache.release(sl.fam)
	sl.setFam(f)
}

// repeatSpan is where patch put a family's new data in builder.repeatText,
// and the length of its text.
type repeatSpan struct {
	start, end, textLen int
}

// patch appends to b.repeatText old's data with the values v put in, one
// per line in old's order (or texts[i], if texts is not nil and it is
// not: see repeatText); counts has bit first+i set when line i holds a
// count. The data is front-coded as old's is: the coding of a line
// depends on its series and the line before's, which are the same, and
// its value is the end of the line (appendFrontCoded), so only value
// bytes and lengths change. False if a value is one the full way stores
// differently (see repeatValue).
func (b *builder) patch(old *family, v []float64, texts [][]byte, counts []uint64, first int) (repeatSpan, bool) {
	if int(old.samples) != len(v) {
		return repeatSpan{}, false
	}
	sp := repeatSpan{start: len(b.repeatText)}
	var ok bool
	if old.textLen == 0 {
		b.repeatText, sp.textLen, ok = patchLines(b.repeatText, old.dataBytes(), v, texts, counts, first)
	} else {
		b.repeatText, sp.textLen, ok = patchCoded(b.repeatText, old.dataBytes(), v, texts, counts, first)
	}
	sp.end = len(b.repeatText)
	return sp, ok && sp.textLen <= math.MaxUint32
}

// withValues returns new families with the series of olds and the data
// patch put at spans, stamped t, in b.repeatNews. They are made in two
// allocations, one of the families and one of their series hashes and
// data: a repeat replaces them all, so they stay live together (a later
// write that replaces only some of them keeps the memory of the others
// until they are replaced too: at most the group's families once more).
func (b *builder) withValues(olds []*family, spans []repeatSpan, t time.Time) []*family {
	n := 0
	for i, old := range olds {
		n += old.series() + (spans[i].end-spans[i].start+7)/8
	}
	words := make([]uint64, n)
	fams := make([]family, len(olds))
	news := b.repeatNews[:0]
	for i, old := range olds {
		f := &fams[i]
		f.id = familyIDs.Add(1)
		f.name, f.help, f.unit = old.name, old.help, old.unit
		// The type, HELP and whether the text adds +Inf buckets are the
		// shape's, and so are the created timestamps (of a protobuf
		// push); a repeat does not take a family with UTF-8 names.
		f.flags.Store(old.flags.Load() &^ famLeft)
		f.created = old.created
		f.samples = old.samples
		f.setPushTime(t)
		// The same series, already sorted, just before the data.
		copy(words, old.seriesHashes())
		f.nHashes = old.nHashes
		words = words[old.series():]
		data := b.repeatText[spans[i].start:spans[i].end]
		if len(data) == 0 && f.nHashes > 0 {
			panic("store: a repeated family with series and no text") // its hashes would be lost
		}
		if len(data) > 0 {
			start := (*byte)(unsafe.Pointer(&words[0]))
			copy(unsafe.Slice(start, len(data)), data)
			f.data = unsafe.String(start, len(data))
			words = words[(len(data)+7)/8:]
		}
		if old.textLen != 0 {
			f.textLen = uint32(spans[i].textLen) //nolint:gosec // checked by patch
		}
		news = append(news, f)
	}
	b.repeatNews = news
	return news
}

// patchLines appends text, plain sample lines, with the values v put in,
// and returns the lines' length; line i holds a count if bit first+i of
// counts is set.
func patchLines(dst, text []byte, v []float64, texts [][]byte, counts []uint64, first int) ([]byte, int, bool) {
	before := len(dst)
	var num [32]byte
	for i := 0; len(text) > 0; i++ {
		end := bytes.IndexByte(text, '\n')
		sp := bytes.LastIndexByte(text[:end], ' ')
		value, ok := repeatText(num[:0], isCount(counts, first+i), v, texts, i)
		if sp < 0 || !ok {
			return dst, 0, false
		}
		dst = roomForLine(dst)
		dst = append(dst, text[:sp+1]...)
		dst = append(dst, value...)
		dst = append(dst, '\n')
		text = text[end+1:]
	}
	return dst, len(dst) - before, true
}

// patchCoded appends data, front-coded sample lines, with the values v put
// in, and returns the length of the lines decoded. A line coded without a
// repeat ends its rest with " value\n" (the prefix it shares with the line
// before ends before its value: two series differ before either ends); a
// line coded with one has " value\n" as its last field.
func patchCoded(dst, data []byte, v []float64, texts [][]byte, counts []uint64, first int) ([]byte, int, bool) {
	textLen := 0
	var num [32]byte
	for i, r := 0, 0; r < len(data); i++ {
		var shared, rest int
		shared, r = uvarintFrom(data, r)
		rest, r = uvarintFrom(data, r)
		lit := rest >> 1
		text, ok := repeatText(num[:0], isCount(counts, first+i), v, texts, i)
		if !ok {
			return dst, 0, false
		}
		dst = binary.AppendUvarint(dst, uint64(shared)) //nolint:gosec // a length
		if rest&1 == 0 {
			literal := data[r : r+lit]
			r += lit
			sp := bytes.LastIndexByte(literal, ' ')
			if sp < 0 {
				return dst, 0, false
			}
			n := sp + 1 + len(text) + 1
			dst = binary.AppendUvarint(dst, uint64(n)<<1) //nolint:gosec // a length
			dst = append(dst, literal[:sp+1]...)
			dst = append(dst, text...)
			dst = append(dst, '\n')
			textLen += shared + n
			continue
		}
		middle := data[r : r+lit]
		r += lit
		var repeat, from, old int
		repeat, r = uvarintFrom(data, r)
		from, r = uvarintFrom(data, r)
		old, r = uvarintFrom(data, r)
		r += old
		n := 1 + len(text) + 1
		dst = binary.AppendUvarint(dst, uint64(rest)) //nolint:gosec // a length
		dst = append(dst, middle...)
		dst = binary.AppendUvarint(dst, uint64(repeat)) //nolint:gosec // a length
		dst = binary.AppendUvarint(dst, uint64(from))   //nolint:gosec // a length
		dst = binary.AppendUvarint(dst, uint64(n))      //nolint:gosec // a length
		dst = append(dst, ' ')
		dst = append(dst, text...)
		dst = append(dst, '\n')
		textLen += shared + lit + repeat + n
	}
	return dst, textLen, true
}

// isCount reports whether bit i of counts is set.
func isCount(counts []uint64, i int) bool {
	return i/64 < len(counts) && counts[i/64]&(1<<(i%64)) != 0
}

// repeatText appends to b the text of the i-th value of a repeat on a
// line that holds a count (count) or a float: texts[i] if there is one
// (a number as the text writes it), else v[i] formatted. False where the
// full way stores the value apart from the text or refuses it
// (repeatValue). A token is copied as it came unless it is a count that
// textfloat.Whole does not take or a negative one: that token is read, as
// ingest reads the others, and goes through repeatValue (a whole count
// from 1e15 to 2^53 repeats; a fractional or negative one does not).
func repeatText(b []byte, count bool, v []float64, texts [][]byte, i int) ([]byte, bool) {
	value := v[i]
	if texts != nil && texts[i] != nil {
		t := texts[i]
		if !count || (t[0] != '-' && textfloat.Whole(t)) {
			return append(b, t...), true
		}
		var ok bool
		if value, ok = parseTextFloat(t); !ok {
			return b, false
		}
	}
	value, ok := repeatValue(count, value)
	return appendTextFloat(b, value), ok
}

// repeatValue returns the value the full way stores for v on a line that
// holds a count (count) or a float, and false where the full way stores it
// apart from the text or refuses it: counts that are not whole numbers up
// to 2^53 (a float count, a negative one), and values whose text does not
// read back to the same bits (-0, a NaN other than the parser's).
func repeatValue(count bool, v float64) (float64, bool) {
	if count {
		u := uint64(v)
		return float64(u), v == float64(u) && u <= maxExactCount
	}
	return v, floatExact(v)
}

// isCountLine reports whether the line of f with this series holds a count:
// a summary's _count, a histogram's _bucket or _count.
func isCountLine(f *family, series []byte) bool {
	histogram := false
	switch f.typ() {
	case dto.MetricType_SUMMARY:
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		histogram = true
	default:
		return false
	}
	name := series
	if i := bytes.IndexByte(series, '{'); i >= 0 {
		name = series[:i]
	}
	if len(name) <= len(f.name) {
		return false
	}
	rest := string(name[len(f.name):])
	return rest == "_count" || histogram && rest == "_bucket"
}

// LearnRepeat records r's shape for r's group after r was applied the full
// way. The first push of a shape leaves only its hash; at the second in a
// row, the shape is recorded if the group's families are what r's body
// says, line for line: series()[i] is the text of r's i-th sample line
// before its value (blanks trimmed), and once the grouping labels and the
// instance="" the push added are taken out of the stored line, the two
// must be equal, and the stored value must be r.Values[i] as ApplyRepeat
// would write it. The families the body names must be whole, each used
// once; for a PUT they must be all the group has besides its push-time
// gauges. Anything else, or a group written since, and nothing is
// recorded.
func (s *Store) LearnRepeat(r Repeat, series func() [][]byte) {
	if len(r.Values) == 0 {
		return
	}
	s.mu.Lock()
	g := s.groups[r.Key]
	if g == nil || g.failureOnly {
		s.mu.Unlock()
		return
	}
	sh := g.shape
	if sh == nil || sh.hash != r.Shape || sh.replace != r.Replace {
		// The first push of this shape: a push that is not repeated
		// (a batch job's) does not pay for matching its lines.
		g.shape = &repeatShape{hash: r.Shape, replace: r.Replace}
		s.mu.Unlock()
		return
	}
	if sh.version == g.version && sh.families != 0 {
		s.mu.Unlock()
		return // learnt already
	}
	if sh.families == 0 && !learnDue(sh.lines) {
		sh.lines++
		s.mu.Unlock()
		return
	}
	tried := sh
	version := g.version
	b := s.builders.Get().(*builder)
	defer s.putBuilder(b)
	fams := b.repeatOlds[:0]
	for _, sl := range g.slots {
		fams = append(fams, sl.fam)
	}
	b.repeatOlds = fams
	s.mu.Unlock()

	lines := series()
	if len(lines) == len(r.Values) {
		sh = learnShape(r, lines, fams, groupingPairs(r.Key), &b.repeatOld)
	} else {
		sh = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case sh != nil && s.groups[r.Key] == g && g.version == version:
		sh.version = version
		g.shape = sh
	case sh == nil && g.shape == tried:
		// Tried again after 1, 2, 4, ... pushes of the shape: a body that
		// cannot repeat (its lines written in a way the full way accepts
		// and the matching does not know) does not pay for the matching
		// on every push.
		failed := uint32(1)
		if tried.families == 0 {
			failed = tried.lines + 1
		}
		g.shape = &repeatShape{hash: r.Shape, replace: r.Replace, lines: failed}
	}
}

// learnDue reports whether LearnRepeat tries to learn a shape it has seen
// n times without learning it: at n 0, 1, 2, 4, ... 64, then every 64th.
func learnDue(n uint32) bool {
	if n < 64 {
		return n&(n-1) == 0
	}
	return n%64 == 0
}

// learnShape matches the body's lines against fams, the group's families
// sorted by name, and returns the shape, or nil.
func learnShape(r Repeat, series [][]byte, fams []*family, grouping [][]byte, sc *[]byte) *repeatShape {
	if len(fams) > math.MaxUint8+1 || len(series) > maxPermLines {
		return nil
	}
	sh := &repeatShape{hash: r.Shape, replace: r.Replace, lines: uint32(len(series))} //nolint:gosec // checked above
	// A bit per family of fams, at most 256.
	var used [4]uint64
	order := make([]byte, 0, len(fams))
	var perm []uint16 // the body's index of each line, the store's order
	for i := 0; i < len(series); {
		k := familyOfLine(fams, series[i])
		if k < 0 || used[k/64]&(1<<(k%64)) != 0 {
			return nil
		}
		used[k/64] |= 1 << (k % 64)
		f := fams[k]
		if f.samples == 0 || i+int(f.samples) > len(series) || f.pb.Load() != nil || f.utf8() {
			return nil
		}
		// The family's lines in the body, each matched once: in the
		// store's order, or (found by their name and label set) in
		// another.
		// A line that matches in place has the key of its stored line,
		// which no other stored line has: it cannot have been taken.
		lines := series[i : i+int(f.samples)]
		var byPairs map[string]int
		var taken []bool
		text := f.text(sc)
		for j := 0; len(text) > 0; j++ {
			end := bytes.IndexByte(text, '\n')
			sp := bytes.LastIndexByte(text[:end], ' ')
			if sp < 0 || j >= len(lines) {
				return nil
			}
			at := j
			if !sameSeries(text[:sp], lines[j], grouping) {
				if byPairs == nil {
					if byPairs = pushedPairs(lines, boundLabel(f)); byPairs == nil {
						return nil
					}
					taken = make([]bool, len(lines))
					for p := range j {
						taken[p] = true // matched in place
					}
				}
				key, ok := storedPairs(text[:sp], grouping)
				if !ok {
					return nil
				}
				if at, ok = byPairs[key]; !ok || taken[at] {
					return nil
				}
			}
			if taken != nil {
				taken[at] = true
			}
			if at != j && perm == nil {
				perm = make([]uint16, len(series))
				for p := range perm {
					perm[p] = uint16(p) //nolint:gosec // at most maxPermLines
				}
			}
			if perm != nil {
				perm[i+j] = uint16(i + at) //nolint:gosec // at most maxPermLines
			}
			count := isCountLine(f, text[:sp])
			if count {
				if sh.counts == nil {
					sh.counts = make([]uint64, (len(series)+63)/64)
				}
				sh.counts[(i+j)/64] |= 1 << ((i + j) % 64)
			}
			v, ok := repeatValue(count, r.Values[i+at])
			if !ok || string(appendTextFloat(nil, v)) != string(text[sp+1:end]) {
				return nil
			}
			text = text[end+1:]
		}
		i += len(lines)
		order = append(order, byte(k))
	}
	sh.families = uint16(len(order)) //nolint:gosec // at most 256, checked above
	for _, p := range perm {
		order = binary.LittleEndian.AppendUint16(order, p)
	}
	sh.order = string(order)
	k := slices.IndexFunc(fams, func(f *family) bool { return f.name == PushTimeName })
	if k < 0 || fams[k].samples != 1 {
		return nil // every pushed group has it, one line, which a repeat rewrites
	}
	sh.pushTime = uint8(k) //nolint:gosec // len(fams) is checked above
	if r.Replace {
		for k, f := range fams {
			if used[k/64]&(1<<(k%64)) == 0 && f.name != PushTimeName && f.name != PushFailureTimeName {
				return nil // a PUT of these lines would drop it
			}
		}
	}
	return sh
}

// familyOfLine returns the index in fams of the family a line with this
// series text belongs to, or -1: the family of its metric name, or the
// summary or histogram it is the _sum, _count or _bucket line of.
func familyOfLine(fams []*family, series []byte) int {
	name := series
	if i := bytes.IndexAny(series, "{ \t"); i >= 0 {
		name = series[:i]
	}
	find := func(n []byte) int {
		lo, hi := 0, len(fams)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if fams[m].name < string(n) {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo < len(fams) && fams[lo].name == string(n) {
			return lo
		}
		return -1
	}
	if k := find(name); k >= 0 && fams[k].name != PushTimeName && fams[k].name != PushFailureTimeName {
		return k
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := bytes.CutSuffix(name, []byte(suffix)); ok {
			if k := find(base); k >= 0 && (fams[k].typ() != dto.MetricType_GAUGE && fams[k].typ() != dto.MetricType_COUNTER && fams[k].typ() != dto.MetricType_UNTYPED) {
				return k
			}
		}
	}
	return -1
}

// groupingPairs returns the label pairs a push of group k gets on every
// line, as the text renders them (name="escaped value"): the grouping
// labels, and instance="" when instance is not one of them.
func groupingPairs(k GroupKey) [][]byte {
	var out [][]byte
	for _, lp := range (&gaugeScratch{}).labels(k) {
		pair := append([]byte(lp.GetName()), '=', '"')
		pair = appendEscaped(pair, lp.GetValue(), true)
		out = append(out, append(pair, '"'))
	}
	return out
}

// sameSeries reports whether stored, a stored line's series, is pushed
// once the pairs of grouping are taken out of its labels: the same name,
// and the other pairs in the same order with the same text (pushed writes
// no braces if no pair is left).
func sameSeries(stored, pushed []byte, grouping [][]byte) bool {
	open := bytes.IndexByte(stored, '{')
	if open < 0 {
		return bytes.Equal(stored, pushed)
	}
	name := stored[:open]
	if !bytes.HasPrefix(pushed, name) {
		return false
	}
	rest := pushed[len(name):] // "" or "{...}"
	inner := stored[open+1 : len(stored)-1]
	first := true
	for len(inner) > 0 {
		pair, n := nextPair(inner)
		if n < 0 {
			return false
		}
		inner = inner[n:]
		if isGroupingPair(pair, grouping) {
			continue
		}
		sep := byte(',')
		if first {
			sep = '{'
		}
		first = false
		if len(rest) == 0 || rest[0] != sep || !bytes.HasPrefix(rest[1:], pair) {
			return false
		}
		rest = rest[1+len(pair):]
	}
	if first {
		return len(rest) == 0
	}
	return len(rest) == 1 && rest[0] == '}'
}

// nextPair returns the first label pair of a rendered label list
// (name="value", the value escaped) and how many bytes it and the comma
// after it take; -1 if the list is not one the store renders.
func nextPair(list []byte) ([]byte, int) {
	q := bytes.IndexByte(list, '"')
	if q < 0 {
		return nil, -1
	}
	for i := q + 1; i < len(list); i++ {
		switch list[i] {
		case '\\':
			i++
		case '"':
			if i+1 == len(list) {
				return list, len(list)
			}
			if list[i+1] != ',' {
				return nil, -1
			}
			return list[:i+1], i + 2
		}
	}
	return nil, -1
}

// maxPermLines is the most lines a shape's permutation indexes: more
// than a repeated push may have (maxRepeatLines in ingest).
const maxPermLines = math.MaxUint16 + 1

// pushedPairs returns, for each of a family's series as a body wrote
// them (name{name="value",...}, as the store renders a label list), its
// key (labelKey) and index; nil if one is not written so, or two have
// the same key. The value of the label bound names (boundLabel) is read
// as the float it is and written as the store writes it: the Python
// client writes le="1.0" where the store writes le="1".
func pushedPairs(series [][]byte, bound string) map[string]int {
	out := make(map[string]int, len(series))
	var pairs [][]byte
	for i, s := range series {
		var name []byte
		var ok bool
		if name, pairs, ok = splitSeries(s, pairs[:0]); !ok {
			return nil
		}
		for j, pair := range pairs {
			if bound != "" && len(pair) > len(bound)+2 && string(pair[:len(bound)]) == bound && string(pair[len(bound):len(bound)+2]) == `="` {
				v, ok := parseTextFloat(pair[len(bound)+2 : len(pair)-1])
				if !ok {
					return nil
				}
				pairs[j] = append(appendTextFloat(append([]byte(bound), '=', '"'), v), '"')
			}
		}
		key := labelKey(name, pairs)
		if _, dup := out[key]; dup {
			return nil
		}
		out[key] = i
	}
	return out
}

// boundLabel returns the label whose value the store writes as a float
// in f's lines: le in a histogram's, quantile in a summary's; else "".
func boundLabel(f *family) string {
	switch f.typ() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return "le"
	case dto.MetricType_SUMMARY:
		return "quantile"
	}
	return ""
}

// storedPairs returns the key (labelKey) of a stored line's series with
// the pairs of grouping taken out.
func storedPairs(stored []byte, grouping [][]byte) (string, bool) {
	name, pairs, ok := splitSeries(stored, nil)
	if !ok {
		return "", false
	}
	pairs = slices.DeleteFunc(pairs, func(p []byte) bool { return isGroupingPair(p, grouping) })
	return labelKey(name, pairs), true
}

// splitSeries returns a series' name and, appended to pairs, its label
// pairs (name="value", as the store renders a label list); false if it
// is not written so.
func splitSeries(s []byte, pairs [][]byte) ([]byte, [][]byte, bool) {
	open := bytes.IndexByte(s, '{')
	if open < 0 {
		return s, pairs, true
	}
	if s[len(s)-1] != '}' {
		return nil, nil, false
	}
	for list := s[open+1 : len(s)-1]; len(list) > 0; {
		pair, n := nextPair(list)
		if n < 0 {
			return nil, nil, false
		}
		pairs = append(pairs, pair)
		list = list[n:]
	}
	return s[:open], pairs, true
}

// labelKey is a series' name and its label pairs (name="value", the
// value escaped as the text format must) in any order, as a string that
// is equal for two series exactly when they are: each part after its
// length, the pairs sorted. The text format has one escaped form of a
// value, so equal labels are equal bytes.
func labelKey(name []byte, pairs [][]byte) string {
	slices.SortFunc(pairs, bytes.Compare)
	key := binary.AppendUvarint(nil, uint64(len(name)))
	key = append(key, name...)
	for _, p := range pairs {
		key = binary.AppendUvarint(key, uint64(len(p)))
		key = append(key, p...)
	}
	return string(key)
}

func isGroupingPair(pair []byte, grouping [][]byte) bool {
	for _, g := range grouping {
		if bytes.Equal(pair, g) {
			return true
		}
	}
	return false
}

// maxKeptRepeatText bounds the text scratch a pooled builder keeps for
// ApplyRepeat: a family of thousands of lines is rare and need not pin it.
const maxKeptRepeatText = 64 << 10

// maxKeptRepeatLines bounds the values a pooled builder keeps room for
// (ingest repeats at most 4,096 lines).
const maxKeptRepeatLines = 4096

// resetRepeat drops the families ApplyRepeat's scratch points to and
// bounds its buffers.
func (b *builder) resetRepeat() {
	clear(b.repeatOlds)
	clear(b.repeatNews)
	clear(b.repeatTexts) // they point into a push's body
	b.repeatTexts = b.repeatTexts[:0]
	if cap(b.repeatValues) > maxKeptRepeatLines {
		b.repeatValues, b.repeatTexts = nil, nil
	}
	b.repeatOlds, b.repeatNews = b.repeatOlds[:0], b.repeatNews[:0]
	if cap(b.repeatOld) > maxKeptRepeatText {
		b.repeatOld = nil
	}
	if cap(b.repeatText) > maxKeptRepeatText {
		b.repeatText = nil
	}
}
