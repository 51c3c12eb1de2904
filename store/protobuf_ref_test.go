package store

// The text-to-protobuf renderers as they were before the one-pass scanner
// (protobuf.go, protobuf_complex.go), kept as the reference the new ones
// are compared with (TestRenderMatchesReference, FuzzRenderMatchesReference).

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
)

type refTextScratch struct {
	mbuf, val []byte
}

func (sc *refTextScratch) appendSimpleProtobuf(b []byte, name string, typ dto.MetricType, text []byte) ([]byte, error) {
	mbuf, val := sc.mbuf, sc.val
	defer func() { sc.mbuf, sc.val = mbuf, val }()
	num := valueField(typ)
	for len(text) > 0 {
		end := bytes.IndexByte(text, '\n')
		if end < 0 || !bytes.HasPrefix(text, []byte(name)) {
			return nil, fmt.Errorf("render protobuf of family %q: malformed text line %q", name, text)
		}
		line := text[len(name):end]
		text = text[end+1:]
		mbuf = mbuf[:0]
		var ok bool
		if len(line) > 0 && line[0] == '{' {
			if mbuf, val, line, ok = refAppendTextLabels(mbuf, val, line[1:]); !ok {
				return nil, fmt.Errorf("render protobuf of family %q: malformed labels in %q", name, line)
			}
		}
		if len(line) < 2 || line[0] != ' ' {
			return nil, fmt.Errorf("render protobuf of family %q: malformed text line %q", name, line)
		}
		v, err := strconv.ParseFloat(string(line[1:]), 64)
		if err != nil {
			return nil, fmt.Errorf("render protobuf of family %q: %w", name, err)
		}
		mbuf = protowire.AppendTag(mbuf, num, protowire.BytesType)
		mbuf = protowire.AppendVarint(mbuf, uint64(valueSize(&v)))
		mbuf = protowire.AppendTag(mbuf, fieldValue, protowire.Fixed64Type)
		mbuf = protowire.AppendFixed64(mbuf, math.Float64bits(v))
		b = protowire.AppendTag(b, metricField, protowire.BytesType)
		b = protowire.AppendBytes(b, mbuf)
	}
	return b, nil
}

func refAppendTextLabels(b, val, line []byte) (_, _, rest []byte, ok bool) {
	for {
		eq := bytes.IndexByte(line, '=')
		if eq < 0 || len(line) < eq+2 || line[eq+1] != '"' {
			return b, val, line, false
		}
		ln := line[:eq]
		line = line[eq+2:]
		i := bytes.IndexByte(line, '"')
		v := line[:max(i, 0)]
		if bytes.IndexByte(v, '\\') >= 0 { // escaped: the rare case
			val, i = refUnescapeLabelValue(val[:0], line)
			v = val
		}
		if i < 0 || i+1 >= len(line) {
			return b, val, line, false
		}
		size := protowire.SizeTag(fieldLabelName) + protowire.SizeBytes(len(ln)) +
			protowire.SizeTag(fieldLabelValue) + protowire.SizeBytes(len(v))
		b = protowire.AppendTag(b, fieldMetricLabel, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = protowire.AppendTag(b, fieldLabelName, protowire.BytesType)
		b = protowire.AppendBytes(b, ln)
		b = protowire.AppendTag(b, fieldLabelValue, protowire.BytesType)
		b = protowire.AppendBytes(b, v)
		switch line[i+1] {
		case ',':
			line = line[i+2:]
		case '}':
			return b, val, line[i+2:], true
		default:
			return b, val, line, false
		}
	}
}

func refUnescapeLabelValue(val, line []byte) ([]byte, int) {
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			return val, i
		case c == '\\' && i+1 < len(line):
			i++
			if c = line[i]; c == 'n' {
				c = '\n'
			}
		}
		val = append(val, c)
	}
	return val, -1
}

type refComplexText struct {
	entries []byte // Quantile or Bucket messages of the current metric, framed
	body    []byte // the Summary or Histogram message
	metric  []byte // the Metric message
	val     []byte
	lastAt  int  // where the last entry starts in entries
	lastInf bool // the last bucket read is +Inf
	haveSum bool // the _sum line of the current metric was read
	sum     float64
}

func (sc *refComplexText) appendProtobuf(b []byte, name string, typ dto.MetricType, text []byte, infAdded bool) ([]byte, int, error) {
	sc.entries, sc.haveSum, sc.lastInf = sc.entries[:0], false, false
	special, entrySuffix, outer := "quantile", "", fieldMetricSummary
	if typ != dto.MetricType_SUMMARY {
		special, entrySuffix, outer = "le", "_bucket", fieldMetricHistogram
	}
	n := 0
	for len(text) > 0 {
		end := bytes.IndexByte(text, '\n')
		if end < 0 || !bytes.HasPrefix(text, []byte(name)) {
			return nil, 0, errComplexText
		}
		line := text[len(name):end]
		text = text[end+1:]
		switch {
		case bytes.HasPrefix(line, []byte("_sum")) && (len(line) > 4 && (line[4] == '{' || line[4] == ' ')):
			if err := sc.readSum(line[4:]); err != nil {
				return nil, 0, err
			}
		case bytes.HasPrefix(line, []byte("_count")) && (len(line) > 6 && (line[6] == '{' || line[6] == ' ')):
			var err error
			if b, err = sc.count(b, line[6:], outer, infAdded && outer == fieldMetricHistogram); err != nil {
				return nil, 0, err
			}
			n++
		case bytes.HasPrefix(line, []byte(entrySuffix)) && len(line) > len(entrySuffix) && line[len(entrySuffix)] == '{':
			if err := sc.entry(line[len(entrySuffix):], special, outer == fieldMetricSummary); err != nil {
				return nil, 0, err
			}
		default:
			return nil, 0, errComplexText
		}
	}
	if len(sc.entries) > 0 || sc.haveSum {
		return nil, 0, errComplexText // a metric without its _count line
	}
	return b, n, nil
}

func (sc *refComplexText) entry(line []byte, special string, summary bool) error {
	shut := bytes.LastIndex(line, []byte("\"} "))
	if shut < 0 {
		return errComplexText
	}
	open := bytes.LastIndexByte(line[:shut], '"')
	if open < len(special)+2 || string(line[open-len(special)-1:open]) != special+"=" ||
		(line[open-len(special)-2] != '{' && line[open-len(special)-2] != ',') {
		return errComplexText
	}
	key, err := strconv.ParseFloat(string(line[open+1:shut]), 64)
	if err != nil {
		return errComplexText
	}
	v, err := strconv.ParseFloat(string(line[shut+3:]), 64)
	if err != nil {
		return errComplexText
	}
	var msg [2 * (1 + 8)]byte
	var m []byte
	if summary {
		m = protowire.AppendTag(msg[:0], fieldQuantileQ, protowire.Fixed64Type)
		m = protowire.AppendFixed64(m, math.Float64bits(key))
		m = protowire.AppendTag(m, fieldQuantileValue, protowire.Fixed64Type)
		m = protowire.AppendFixed64(m, math.Float64bits(v))
	} else {
		m = protowire.AppendTag(msg[:0], fieldBucketCount, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(v))
		m = protowire.AppendTag(m, fieldBucketBound, protowire.Fixed64Type)
		m = protowire.AppendFixed64(m, math.Float64bits(key))
		sc.lastInf = math.IsInf(key, 1)
	}
	if sc.haveSum {
		return errComplexText
	}
	sc.lastAt = len(sc.entries)
	sc.entries = protowire.AppendTag(sc.entries, fieldQuantileOrBkt, protowire.BytesType)
	sc.entries = protowire.AppendBytes(sc.entries, m)
	return nil
}

func (sc *refComplexText) readSum(line []byte) error {
	if sc.haveSum {
		return errComplexText
	}
	sc.haveSum = true
	sc.metric = sc.metric[:0]
	var ok bool
	if line[0] == '{' {
		if sc.metric, sc.val, line, ok = refAppendTextLabels(sc.metric, sc.val, line[1:]); !ok {
			return errComplexText
		}
	}
	if len(line) < 2 || line[0] != ' ' {
		return errComplexText
	}
	v, err := strconv.ParseFloat(string(line[1:]), 64)
	if err != nil {
		return errComplexText
	}
	sc.sum = v
	return nil
}

func (sc *refComplexText) count(b, line []byte, outer protowire.Number, dropInf bool) ([]byte, error) {
	if !sc.haveSum {
		return nil, errComplexText
	}
	sp := bytes.LastIndexByte(line, ' ')
	if sp < 0 {
		return nil, errComplexText
	}
	v, err := strconv.ParseFloat(string(line[sp+1:]), 64)
	if err != nil {
		return nil, errComplexText
	}
	entries := sc.entries
	if dropInf {
		if !sc.lastInf || len(entries) == 0 {
			return nil, errComplexText
		}
		entries = entries[:sc.lastAt]
	}
	// Fields in number order, as proto.Marshal writes them.
	body := protowire.AppendTag(sc.body[:0], fieldSampleCount, protowire.VarintType)
	body = protowire.AppendVarint(body, uint64(v))
	body = protowire.AppendTag(body, fieldSampleSum, protowire.Fixed64Type)
	body = protowire.AppendFixed64(body, math.Float64bits(sc.sum))
	body = append(body, entries...)
	m := protowire.AppendTag(sc.metric, outer, protowire.BytesType)
	m = protowire.AppendBytes(m, body)
	b = protowire.AppendTag(b, metricField, protowire.BytesType)
	b = protowire.AppendBytes(b, m)
	sc.entries, sc.body, sc.metric = sc.entries[:0], body[:0], m[:0]
	sc.lastInf, sc.haveSum = false, false
	return b, nil
}
