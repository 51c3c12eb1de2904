package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pushring/pushring/internal/textfloat"
)

// Reading the store's own text lines back into protobuf (protobuf.go,
// protobuf_complex.go) is most of a persistence write and of the first
// protobuf scrape of a family. The helpers here make that one pass over
// each line: every field written is numbered below 16, so its tag is one
// constant byte; lengths are nearly always below 128, one byte too; and
// the sample values the store writes (appendTextFloat: integers and
// shortest decimals) are read without strconv in the usual case.

// Tags of the fields the text renderers write.
const (
	tagMetric        = byte(metricField)<<3 | byte(protowire.BytesType)
	tagMetricLabel   = byte(fieldMetricLabel)<<3 | byte(protowire.BytesType)
	tagLabelName     = byte(fieldLabelName)<<3 | byte(protowire.BytesType)
	tagLabelValue    = byte(fieldLabelValue)<<3 | byte(protowire.BytesType)
	tagValue         = byte(fieldValue)<<3 | byte(protowire.Fixed64Type)
	tagSampleCount   = byte(fieldSampleCount)<<3 | byte(protowire.VarintType)
	tagSampleSum     = byte(fieldSampleSum)<<3 | byte(protowire.Fixed64Type)
	tagQuantileOrBkt = byte(fieldQuantileOrBkt)<<3 | byte(protowire.BytesType)
	tagQuantileQ     = byte(fieldQuantileQ)<<3 | byte(protowire.Fixed64Type)
	tagQuantileValue = byte(fieldQuantileValue)<<3 | byte(protowire.Fixed64Type)
	tagBucketCount   = byte(fieldBucketCount)<<3 | byte(protowire.VarintType)
	tagBucketBound   = byte(fieldBucketBound)<<3 | byte(protowire.Fixed64Type)
)

// bytesTag is the tag of a length-delimited field n (n < 16).
func bytesTag(n protowire.Number) byte { return byte(n)<<3 | byte(protowire.BytesType) }

// appendVarint is protowire.AppendVarint with the one-byte case inline.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

// parseTextFloat returns strconv.ParseFloat(string(s), 64), bit for bit,
// and whether it succeeded.
func parseTextFloat(s []byte) (float64, bool) {
	if f, n, ok := textfloat.Scan(s); ok && n == len(s) {
		return f, true
	}
	return parseFloatSlow(s)
}

// parseFloatSlow is parseTextFloat's way through strconv, with the two
// infinities the text writes for histogram bounds first.
func parseFloatSlow(s []byte) (float64, bool) {
	switch string(s) {
	case "+Inf":
		return math.Inf(1), true
	case "-Inf":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(string(s), 64)
	return f, err == nil
}

// scanLineValue reads the sample value that ends a text line: s starts at
// the value and holds at least the rest of the line. It returns the value
// and s after the line's '\n'.
func scanLineValue(s []byte) (float64, []byte, bool) {
	if f, n, ok := textfloat.Scan(s); ok && n < len(s) && s[n] == '\n' {
		return f, s[n+1:], true
	}
	end := bytes.IndexByte(s, '\n')
	if end < 0 {
		return 0, s, false
	}
	v, ok := parseTextFloat(s[:end])
	return v, s[end+1:], ok
}

// appendTextLabels appends the label pairs of a text line, from after its
// '{', as `label` fields, and returns the line after the closing '}'. val
// is scratch for an unescaped value. Label names are the store's (legacy:
// no quotes, no '='); a value ends at its first unescaped '"'.
func appendTextLabels(b, val, line []byte) (_, _, rest []byte, ok bool) {
	i := 0
	for {
		start := i
		i += indexNameEnd(line[i:])
		if i+1 >= len(line) || line[i] != '=' || line[i+1] != '"' {
			return b, val, line, false
		}
		ln := line[start:i]
		i += 2
		vs, esc := i, false
		for {
			if i < len(line) {
				i += indexValueEnd(line[i:])
			}
			if i >= len(line) || line[i] == '\n' {
				return b, val, line, false
			}
			if line[i] == '"' {
				break
			}
			// A backslash: the next byte is escaped, and is not the
			// line's end.
			if i+1 < len(line) && line[i+1] == '\n' {
				return b, val, line, false
			}
			esc = true
			i += 2
		}
		if i+1 >= len(line) {
			return b, val, line, false
		}
		v := line[vs:i]
		if esc { // the rare case
			val = unescapeLabelValue(val[:0], v)
			v = val
		}
		size := 1 + protowire.SizeBytes(len(ln)) + 1 + protowire.SizeBytes(len(v))
		b = append(b, tagMetricLabel)
		b = appendVarint(b, uint64(size))
		b = append(b, tagLabelName)
		b = appendVarint(b, uint64(len(ln)))
		b = append(b, ln...)
		b = append(b, tagLabelValue)
		b = appendVarint(b, uint64(len(v)))
		b = append(b, v...)
		switch line[i+1] {
		case ',':
			i += 2
		case '}':
			return b, val, line[i+2:], true
		default:
			return b, val, line, false
		}
	}
}

// The label scans look at eight bytes at a time: zeroBytes(x^(ones*c))
// flags the bytes of x equal to c. It can also flag a byte above a true
// match (a borrow), never one below, so the lowest flag is always exact.
const ones = 0x0101010101010101

func zeroBytes(x uint64) uint64 { return (x - ones) &^ x & (ones * 0x80) }

// indexNameEnd returns the index of the first '=' or '\n' in s, or len(s).
func indexNameEnd(s []byte) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		if m := zeroBytes(x^(ones*'=')) | zeroBytes(x^(ones*'\n')); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == '=' || c == '\n' {
			return i
		}
	}
	return len(s)
}

// indexValueEnd returns the index of the first '"', '\\' or '\n' in s, or
// len(s).
func indexValueEnd(s []byte) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		if m := zeroBytes(x^(ones*'"')) | zeroBytes(x^(ones*'\\')) | zeroBytes(x^(ones*'\n')); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c == '\n' {
			return i
		}
	}
	return len(s)
}

// unescapeLabelValue appends the text label value v, without its quotes,
// unescaped to val: "\n" is a newline, a backslash before any other byte
// stands for that byte.
func unescapeLabelValue(val, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			i++
			if c = v[i]; c == 'n' {
				c = '\n'
			}
		}
		val = append(val, c)
	}
	return val
}
