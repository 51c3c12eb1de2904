package ingest

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/store"
)

// maxShown is how many bytes of an offending name a limit error quotes:
// enough to recognise it, not enough to echo a payload back.
const maxShown = 64

// limits are the bounds on one push, from Config. A zero field is no limit.
type limits struct {
	series        int // series per push
	labels        int // label pairs per series
	nameLen       int // label name bytes
	valueLen      int // label value bytes
	metricNameLen int // metric family name bytes
}

func limitsOf(c Config) limits {
	return limits{
		series:        c.MaxSeries,
		labels:        c.MaxLabelsPerSeries,
		nameLen:       c.MaxLabelNameLength,
		valueLen:      c.MaxLabelValueLength,
		metricNameLen: c.MaxMetricNameLength,
	}
}

// perSeries reports whether any limit needs a walk over every series.
func (l limits) perSeries() bool {
	return l.labels > 0 || l.nameLen > 0 || l.valueLen > 0 || l.metricNameLen > 0
}

// limitError rejects a push over one of the limits. Its text is the whole
// response body: it names the offending item, the limit and the flag that
// raises it.
type limitError struct {
	reason string // the pushes_rejected_total reason
	kind   error  // ErrBadRequest (400) or ErrTooLarge (413)
	msg    string
}

func (e *limitError) Error() string { return e.msg }

// Unwrap makes the error match its kind (ErrBadRequest or ErrTooLarge) for errors.Is.
func (e *limitError) Unwrap() error { return e.kind }

// overLimit returns a limitError whose text is the formatted description of
// the offender followed by the limit and its flag.
func overLimit(reason string, kind error, flag string, limit int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...) + fmt.Sprintf(", more than the limit of %d; raise --%s", limit, flag)
	return &limitError{reason: reason, kind: kind, msg: msg}
}

// checkKey applies the label limits to the grouping labels of a push URL
// before the body is read. Every series of the group, the push-time gauges
// included, carries these labels (and instance="" if there is no instance),
// so a key over a limit would put every one of them over it, even for an
// empty body.
func (l limits) checkKey(ls []store.Label) error {
	hasInstance := false
	for _, lb := range ls {
		if l.nameLen > 0 && len(lb.Name) > l.nameLen {
			return overLimit(reasonLabelNameLength, ErrBadRequest, flagMaxLabelNameLength, l.nameLen,
				"grouping label name %s is %d bytes long", quoteShort(lb.Name), len(lb.Name))
		}
		if l.valueLen > 0 && len(lb.Value) > l.valueLen {
			return overLimit(reasonLabelValueLength, ErrBadRequest, flagMaxLabelValueLength, l.valueLen,
				"grouping label %s has a value of %d bytes", quoteShort(lb.Name), len(lb.Value))
		}
		hasInstance = hasInstance || lb.Name == instanceLabel
	}
	n := len(ls)
	if !hasInstance {
		n++ // the instance="" every series gets
	}
	if l.labels > 0 && n > l.labels {
		return overLimit(reasonLabelsPerSeries, ErrBadRequest, flagMaxLabelsPerSeries, l.labels,
			"grouping labels give every series of the group %d label pairs", n)
	}
	return nil
}

// check applies the limits to a decoded, sanitised push. When several
// families break a limit, the error is about the first of them by name, so
// the answer to a given push does not depend on map order; a push within
// the limits costs one pass over its label pairs and no allocation.
func (l limits) check(fams map[string]*dto.MetricFamily) error {
	if l.series > 0 {
		n := 0
		for _, mf := range fams {
			n += samples(mf)
		}
		if n > l.series {
			return overLimit(reasonSeriesPerPush, ErrTooLarge, flagMaxSeries, l.series,
				"push has %d series", n)
		}
	}
	if !l.perSeries() {
		return nil
	}
	var first error
	var firstName string
	for _, mf := range fams {
		name := mf.GetName()
		if first != nil && name >= firstName {
			continue
		}
		if err := l.checkFamily(mf); err != nil {
			first, firstName = err, name
		}
	}
	return first
}

// checkFamily checks a family's name and then its series in order.
func (l limits) checkFamily(mf *dto.MetricFamily) error {
	name := mf.GetName()
	if l.metricNameLen > 0 && len(name) > l.metricNameLen {
		return overLimit(reasonMetricNameLength, ErrBadRequest, flagMaxMetricNameLength, l.metricNameLen,
			"metric name %s is %d bytes long", quoteShort(name), len(name))
	}
	for _, m := range mf.GetMetric() {
		if err := l.checkSeries(name, m.GetLabel()); err != nil {
			return err
		}
	}
	return nil
}

// checkSeries checks the label pairs of one series of metric name.
func (l limits) checkSeries(name string, ls []*dto.LabelPair) error {
	if l.labels > 0 && len(ls) > l.labels {
		return overLimit(reasonLabelsPerSeries, ErrBadRequest, flagMaxLabelsPerSeries, l.labels,
			"metric %s has %d label pairs", quoteShort(name), len(ls))
	}
	for _, lp := range ls {
		if l.nameLen > 0 && len(lp.GetName()) > l.nameLen {
			return overLimit(reasonLabelNameLength, ErrBadRequest, flagMaxLabelNameLength, l.nameLen,
				"metric %s has a label name %s of %d bytes", quoteShort(name), quoteShort(lp.GetName()), len(lp.GetName()))
		}
		if l.valueLen > 0 && len(lp.GetValue()) > l.valueLen {
			return overLimit(reasonLabelValueLength, ErrBadRequest, flagMaxLabelValueLength, l.valueLen,
				"metric %s has a value of %d bytes for label %s", quoteShort(name), len(lp.GetValue()), quoteShort(lp.GetName()))
		}
	}
	return nil
}

// quoteShort quotes s for an error message, cut to maxShown bytes with
// "..." after the closing quote when it was longer. The cut backs off to a
// rune boundary (at most utf8.UTFMax-1 bytes, so invalid UTF-8 cannot make
// it eat the whole string).
func quoteShort(s string) string {
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	cut := maxShown
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// samples returns how many series Prometheus ingests from mf: one per
// counter, gauge or untyped metric; a summary's quantiles plus _sum and
// _count; a classic histogram's buckets plus the +Inf bucket the exposition
// adds when it is missing, _sum and _count. The store counts the same
// lines against --store.max-series.
func samples(mf *dto.MetricFamily) int {
	n := 0
	for _, m := range mf.GetMetric() {
		switch {
		case m.Summary != nil:
			n += len(m.Summary.GetQuantile()) + 2
		case m.Histogram != nil:
			bs := m.Histogram.GetBucket()
			n += len(bs) + 2
			if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].GetUpperBound(), +1) {
				n++
			}
		default:
			n++
		}
	}
	return n
}
