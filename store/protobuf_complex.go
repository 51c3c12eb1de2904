package store

import (
	"bytes"
	"errors"
	"math"

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
	metric  []byte // the label fields of the current Metric (from its _sum line)
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
func (sc *complexText) appendProtobuf(b []byte, name string, typ dto.MetricType, text []byte, infAdded bool, created []byte) ([]byte, int, error) {
	sc.entries, sc.haveSum, sc.lastInf = sc.entries[:0], false, false
	cr := createdReader(created)
	special, entrySuffix, outer := "quantile=", "", fieldMetricSummary
	if typ != dto.MetricType_SUMMARY {
		special, entrySuffix, outer = "le=", "_bucket", fieldMetricHistogram
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
			ts, hasTS := cr.next()
			if b, err = sc.count(b, line[6:], outer, infAdded && outer == fieldMetricHistogram, ts, hasTS); err != nil {
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
// (special is its name and '=') is last and its value (a number) has no
// quote or escape.
func (sc *complexText) entry(line []byte, special string, summary bool) error {
	sp := bytes.LastIndexByte(line, ' ')
	if sp < 2 || line[sp-1] != '}' || line[sp-2] != '"' {
		return errComplexText
	}
	shut := sp - 2
	open := bytes.LastIndexByte(line[:shut], '"')
	if open < len(special)+1 || string(line[open-len(special):open]) != special ||
		(line[open-len(special)-1] != '{' && line[open-len(special)-1] != ',') {
		return errComplexText
	}
	key, ok := parseTextFloat(line[open+1 : shut])
	if !ok {
		return errComplexText
	}
	v, ok := parseTextFloat(line[sp+1:])
	if !ok {
		return errComplexText
	}
	if sc.haveSum {
		return errComplexText
	}
	sc.lastAt = len(sc.entries)
	if summary {
		sc.entries = append(sc.entries, tagQuantileOrBkt, 2*(1+8), tagQuantileQ)
		sc.entries = protowire.AppendFixed64(sc.entries, math.Float64bits(key))
		sc.entries = append(sc.entries, tagQuantileValue)
		sc.entries = protowire.AppendFixed64(sc.entries, math.Float64bits(v))
		return nil
	}
	count := uint64(v)
	sc.entries = append(sc.entries, tagQuantileOrBkt, byte(1+protowire.SizeVarint(count)+1+8), tagBucketCount)
	sc.entries = appendVarint(sc.entries, count)
	sc.entries = append(sc.entries, tagBucketBound)
	sc.entries = protowire.AppendFixed64(sc.entries, math.Float64bits(key))
	sc.lastInf = math.IsInf(key, 1)
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
	if sc.sum, ok = parseTextFloat(line[1:]); !ok {
		return errComplexText
	}
	return nil
}

// count reads the _count line, after "_count", and appends the finished
// metric to b, with its created timestamp ts if hasTS.
func (sc *complexText) count(b, line []byte, outer protowire.Number, dropInf bool, ts []byte, hasTS bool) ([]byte, error) {
	if !sc.haveSum {
		return nil, errComplexText
	}
	sp := bytes.LastIndexByte(line, ' ')
	if sp < 0 {
		return nil, errComplexText
	}
	v, ok := parseTextFloat(line[sp+1:])
	if !ok {
		return nil, errComplexText
	}
	entries := sc.entries
	if dropInf {
		if !sc.lastInf || len(entries) == 0 {
			return nil, errComplexText
		}
		entries = entries[:sc.lastAt]
	}
	// Fields in number order, as proto.Marshal writes them, straight into
	// b: the Metric (labels, then the Summary or Histogram) in a `metric`
	// field.
	count := uint64(v)
	created := fieldSummaryCreated
	if outer == fieldMetricHistogram {
		created = fieldHistogramCreated
	}
	body := 1 + protowire.SizeVarint(count) + 1 + 8 + len(entries)
	if hasTS {
		body += createdFieldSize(created, ts)
	}
	metric := len(sc.metric) + 1 + protowire.SizeBytes(body)
	b = append(b, tagMetric)
	b = appendVarint(b, uint64(metric))
	b = append(b, sc.metric...)
	b = append(b, bytesTag(outer))
	b = appendVarint(b, uint64(body))
	b = append(b, tagSampleCount)
	b = appendVarint(b, count)
	b = append(b, tagSampleSum)
	b = protowire.AppendFixed64(b, math.Float64bits(sc.sum))
	b = append(b, entries...)
	if hasTS { // the last field written: Summary's 4, Histogram's 15
		b = appendCreatedField(b, created, ts)
	}
	sc.entries, sc.metric = sc.entries[:0], sc.metric[:0]
	sc.lastInf, sc.haveSum = false, false
	return b, nil
}
