package store

import (
	"bytes"
	"errors"
	"math"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of Metric, Summary, Histogram, Quantile and Bucket used
// below.
const (
	fieldMetricSummary   protowire.Number = 4
	fieldMetricHistogram protowire.Number = 7
	fieldSampleCount     protowire.Number = 1 // Summary and Histogram
	fieldSampleSum       protowire.Number = 2 // Summary and Histogram
	fieldQuantileOrBkt   protowire.Number = 3 // Summary.quantile, Histogram.bucket
	fieldQuantileQ       protowire.Number = 1
	fieldQuantileValue   protowire.Number = 2
	fieldBucketCount     protowire.Number = 1
	fieldBucketBound     protowire.Number = 2
)

// errComplexText is returned by appendProtobuf for text it does not
// read; the caller falls back to expfmt's parser.
var errComplexText = errors.New("summary or histogram text not in the expected layout")

// complexText reads summary and histogram text; its buffers are reused.
type complexText struct {
	entries []byte // Quantile or Bucket messages of the current metric, framed
	body    []byte // the Summary or Histogram message
	metric  []byte // the Metric message
	val     []byte
	lastAt  int  // where the last entry starts in entries
	lastInf bool // the last bucket read is +Inf
	haveSum bool // the _sum line of the current metric was read
	sum     float64
}

// appendProtobuf appends the `metric` fields of a summary or
// histogram family called name from its text lines, without expfmt's
// parser. It reads only the layout expfmt.MetricFamilyToText writes for
// the metrics textExact accepts: per metric, the quantile or bucket lines
// (the special label last), then name_sum, then name_count, the labels of
// name_sum being the metric's. infAdded takes the last bucket (+Inf) off
// each histogram again, as parseText does. Anything else is errComplexText.
func (sc *complexText) appendProtobuf(b []byte, name string, typ dto.MetricType, text []byte, infAdded bool) ([]byte, int, error) {
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

// entry reads a quantile or bucket line, from its '{': the special label
// is last and its value (a number) has no quote or escape.
func (sc *complexText) entry(line []byte, special string, summary bool) error {
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

// sum reads the _sum line, after "_sum": the metric's labels and sum.
func (sc *complexText) readSum(line []byte) error {
	if sc.haveSum {
		return errComplexText
	}
	sc.haveSum = true
	sc.metric = sc.metric[:0]
	var ok bool
	if line[0] == '{' {
		if sc.metric, sc.val, line, ok = appendTextLabels(sc.metric, sc.val, line[1:]); !ok {
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

// count reads the _count line, after "_count", and appends the finished
// metric to b.
func (sc *complexText) count(b, line []byte, outer protowire.Number, dropInf bool) ([]byte, error) {
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
