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
// eighth of the bytes: each line as the length of the prefix it shares
// with the line before and the length of the rest of the line (two
// uvarints), then that rest, newline included. Decoding is two copies a
// line and no search (family.text); BENCHMARKS.md, "Front-coded text",
// has what it saves and costs.

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
}

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
	for line, ok := lines.next(); ok; line, ok = lines.next() {
		s.text += len(line)
		if line[len(line)-1] != '\n' {
			whole = false
			continue
		}
		s.lines++
		line = line[:len(line)-1]
		shared := sharedPrefix(prev, line)
		rest := len(line) + 1 - shared
		s.coded += uvarintLen(shared) + uvarintLen(rest) + rest
		prev = line
	}
	if !whole || s.lines < 2 || s.text > math.MaxUint32 || s.coded > s.text-s.text/frontCodeMin {
		s.coded = -1
	}
	return s
}

// appendFrontCoded appends the lines front-coded to dst.
func appendFrontCoded(dst []byte, lines lineSeq) []byte {
	var prev []byte
	for line, ok := lines.next(); ok; line, ok = lines.next() {
		shared := sharedPrefix(prev, line[:len(line)-1])
		dst = binary.AppendUvarint(dst, uint64(shared))
		dst = binary.AppendUvarint(dst, uint64(len(line)-shared))
		dst = append(dst, line[shared:]...)
		prev = line[:len(line)-1]
	}
	return dst
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
		copy(out[w:w+shared], out[prev:prev+shared])
		copy(out[w+shared:w+shared+rest], data[r:r+rest])
		prev, w, r = w, w+shared+rest, r+rest
	}
	return dst[:start+w]
}

// uvarintAt reads a uvarint of two bytes or more that appendFrontCoded wrote at
// data[r:], and returns it and where the next field starts.
func uvarintAt(data []byte, r int) (int, int) {
	v, k := binary.Uvarint(data[r:])
	return int(v), r + k //nolint:gosec // lengths within a text under 4 GiB
}
