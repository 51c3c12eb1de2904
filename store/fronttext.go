package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
)

// The text lines of a family are sorted (client_golang's order) and carry
// the group's labels, so a line mostly repeats the one before it: the
// metric name, the grouping labels and the first label values. A family
// of two or more lines keeps them front-coded when that saves at least an
// eighth of the bytes. Each line is coded as the length of the prefix it
// shares with the line before, then the rest of the line:
//
//	uvarint shared, uvarint len(rest)<<1, rest (newline included)
//
// When a label that differs sorts before others that do not (a device
// label before instance and job), the line repeats the end of the line
// before's labels after its own first bytes. It is then coded as its
// prefix, the bytes up to that repeat, the repeat as a copy from the
// line before, and the value:
//
//	uvarint shared, uvarint len(middle)<<1|1, middle,
//	uvarint len(repeat), uvarint where it starts in the line before,
//	uvarint len(value), value (from the space before it, newline included)
//
// Decoding is two copies a line, or four, and no search (family.text);
// BENCHMARKS.md, "Front-coded text" and "Repeated labels, and the
// collector's target", has what it saves and costs.

// frontCodeMin is the smallest share of the text front coding must save
// for a family to keep its lines coded; below it they are kept as they
// are, and read without decoding.
const frontCodeMin = 8 // at least len/8

// lineSeq yields the lines of a family's text, each ending in '\n': the
// lines of text in turn, or, when order is set, the lines it points to in
// text, in its order (buildSimple's rendered metrics, sorted).
type lineSeq struct {
	text  []byte
	order []simpleChunk
	i     int
	// codes, if not nil, is scratch in which measureLines keeps how it
	// codes each of the first maxKeptCodes lines, for appendFrontCoded to
	// reuse.
	codes *[]lineCode
}

// maxKeptCodes is the most line codes a lineSeq's scratch keeps: enough
// for the families of a usual push, while a family of thousands of lines
// has the lines past it coded again rather than grow the scratch (what a
// push allocates is charged to the memory budget by ingest.DecodeCost).
const maxKeptCodes = 512

// next returns the next line and false once there is none.
func (l *lineSeq) next() ([]byte, bool) {
	if l.order != nil {
		if l.i == len(l.order) {
			return nil, false
		}
		c := l.order[l.i]
		l.i++
		return l.text[c.textStart:c.textEnd], true
	}
	if l.i == len(l.text) {
		return nil, false
	}
	n := bytes.IndexByte(l.text[l.i:], '\n') + 1
	if n == 0 {
		n = len(l.text) - l.i // no final newline: measureLines declines to code
	}
	line := l.text[l.i : l.i+n]
	l.i += n
	return line, true
}

// lineSizes is what measureLines finds in one walk over the lines.
type lineSizes struct {
	text  int // bytes of the lines as they are
	lines int // lines ending in '\n': the family's samples
	coded int // bytes front-coded, or -1 if they are not to be coded
}

// measureLines measures lines, and the size they take front-coded unless
// they are not to be coded: fewer than two lines, a line without its
// newline, 4 GiB or more of text, or a saving below len/frontCodeMin.
func measureLines(lines lineSeq) lineSizes {
	var s lineSizes
	whole := true
	var prev []byte // the line before, without its newline
	var codes []lineCode
	if lines.codes != nil {
		codes = (*lines.codes)[:0]
	}
	for line, ok := lines.next(); ok; line, ok = lines.next() {
		s.text += len(line)
		if line[len(line)-1] != '\n' {
			whole = false
			continue
		}
		s.lines++
		line = line[:len(line)-1]
		c := codeLine(prev, line)
		s.coded += c.size(len(line) + 1)
		if lines.codes != nil && len(codes) < maxKeptCodes {
			codes = append(codes, c)
		}
		prev = line
	}
	if lines.codes != nil {
		*lines.codes = codes
	}
	if !whole || s.lines < 2 || s.text > math.MaxUint32 || s.coded > s.text-s.text/frontCodeMin {
		s.coded = -1
	}
	return s
}

// appendFrontCoded appends the lines front-coded to dst, as
// measureLines measured them last (with lines.codes, it reuses the codes
// it kept).
func appendFrontCoded(dst []byte, lines lineSeq) []byte {
	var prev []byte
	var codes []lineCode
	if lines.codes != nil {
		codes = *lines.codes
	}
	for i := 0; ; i++ {
		line, ok := lines.next()
		if !ok {
			break
		}
		var c lineCode
		if i < len(codes) {
			c = codes[i]
		} else {
			c = codeLine(prev, line[:len(line)-1])
		}
		dst = binary.AppendUvarint(dst, uint64(c.shared))
		if c.repeat == 0 {
			dst = binary.AppendUvarint(dst, uint64(len(line)-c.shared)<<1)
			dst = append(dst, line[c.shared:]...)
		} else {
			dst = binary.AppendUvarint(dst, uint64(c.value-c.repeat-c.shared)<<1|1)
			dst = append(dst, line[c.shared:c.value-c.repeat]...)
			dst = binary.AppendUvarint(dst, uint64(c.repeat))
			dst = binary.AppendUvarint(dst, uint64(c.from))
			dst = binary.AppendUvarint(dst, uint64(len(line)-c.value))
			dst = append(dst, line[c.value:]...)
		}
		prev = line[:len(line)-1]
	}
	return dst
}

// minRepeat is the shortest repeat worth a copy: the copy itself takes
// three bytes or more.
const minRepeat = 8

// lineCode is how a line is coded after the line before.
type lineCode struct {
	shared int // the prefix shared with the line before
	// repeat bytes of the line, ending where its value starts (at value),
	// are those of the line before at from; repeat is 0 if none are
	// copied.
	repeat, from, value int
}

// codeLine chooses how line is coded after prev; both are without their
// newline. The repeat it looks for ends where the values start (the last
// space of each line): the labels that follow one that differs.
func codeLine(prev, line []byte) lineCode {
	c := lineCode{shared: sharedPrefix(prev, line)}
	v, pv := bytes.LastIndexByte(line, ' '), bytes.LastIndexByte(prev, ' ')
	if v < c.shared+minRepeat || pv < minRepeat {
		return c
	}
	if n := sharedSuffix(prev[:pv], line[c.shared:v]); n >= minRepeat {
		c.repeat, c.from, c.value = n, pv-n, v
	}
	return c
}

// size is the length of the line coded as c; n is the line's length,
// newline included.
func (c lineCode) size(n int) int {
	if c.repeat == 0 {
		rest := n - c.shared
		return uvarintLen(c.shared) + uvarintLen(rest<<1) + rest
	}
	middle, value := c.value-c.repeat-c.shared, n-c.value
	return uvarintLen(c.shared) + uvarintLen(middle<<1|1) + middle +
		uvarintLen(c.repeat) + uvarintLen(c.from) + uvarintLen(value) + value
}

// uvarintLen is the length of v as a uvarint.
func uvarintLen(v int) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// sharedPrefix returns the length of the longest common prefix of a and b,
// comparing eight bytes at a time.
func sharedPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// sharedSuffix returns the length of the longest common suffix of a and b.
func sharedSuffix(a, b []byte) int {
	n := min(len(a), len(b))
	a, b = a[len(a)-n:], b[len(b)-n:]
	i := n
	for ; i >= 8; i -= 8 {
		if x := binary.BigEndian.Uint64(a[i-8:]) ^ binary.BigEndian.Uint64(b[i-8:]); x != 0 {
			return n - i + bits.TrailingZeros64(x)/8
		}
	}
	for i > 0 && a[i-1] == b[i-1] {
		i--
	}
	return n - i
}

// appendFrontDecoded appends the text lines that appendFrontCoded coded as data
// to dst; size is the length of that text.
func appendFrontDecoded(dst, data []byte, size int) []byte {
	dst = slices.Grow(dst, size)
	start := len(dst)
	out := dst[start : start+size]
	w, prev := 0, 0 // where the next line and the one before start in out
	for r := 0; r < len(data); {
		shared := int(data[r])
		if shared < 0x80 {
			r++
		} else {
			shared, r = uvarintAt(data, r)
		}
		rest := int(data[r])
		if rest < 0x80 {
			r++
		} else {
			rest, r = uvarintAt(data, r)
		}
		lit := rest >> 1
		copy(out[w:w+shared], out[prev:prev+shared])
		end := w + shared
		copy(out[end:end+lit], data[r:r+lit])
		end += lit
		r += lit
		if rest&1 != 0 {
			// Three uvarints, which are one byte each but for long lines
			// (the value's newline follows them).
			repeat, from, value := int(data[r]), int(data[r+1]), int(data[r+2])
			if repeat|from|value < 0x80 {
				r += 3
			} else {
				repeat, r = uvarintFrom(data, r)
				from, r = uvarintFrom(data, r)
				value, r = uvarintFrom(data, r)
			}
			end += copy(out[end:end+repeat], out[prev+from:prev+from+repeat])
			end += copy(out[end:end+value], data[r:r+value])
			r += value
		}
		prev, w = w, end
	}
	return dst[:start+w]
}

// uvarintFrom reads a uvarint that appendFrontCoded wrote at data[r:], and
// returns it and where the next field starts (appendFrontDecoded reads
// the first two of a line itself: this is not inlined).
func uvarintFrom(data []byte, r int) (int, int) {
	if b := data[r]; b < 0x80 {
		return int(b), r + 1
	}
	return uvarintAt(data, r)
}

// uvarintAt reads a uvarint of two bytes or more that appendFrontCoded wrote at
// data[r:], and returns it and where the next field starts.
func uvarintAt(data []byte, r int) (int, int) {
	v, k := binary.Uvarint(data[r:])
	return int(v), r + k //nolint:gosec // lengths within a text under 4 GiB
}
