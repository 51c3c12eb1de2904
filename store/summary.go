package store

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// GroupSummary is what a list of groups shows of one group, read without
// decoding its pushed families.
type GroupSummary struct {
	Key     GroupKey
	Version uint64
	// Deadline is when the group expires; zero: never.
	Deadline time.Time
	// Families counts the pushed families, without the two time gauges
	// the gateway adds.
	Families int
	// Series counts the group's sample lines, the time gauges included, as
	// Stats does.
	Series int
	// PushTime and FailureTime are the values of push_time_seconds and
	// push_failure_time_seconds, in Unix seconds; 0 when missing.
	PushTime, FailureTime float64
}

// LastPushSuccessful reports FailureTime <= PushTime, as
// GroupSnapshot.LastPushSuccessful does.
func (g GroupSummary) LastPushSuccessful() bool { return g.FailureTime <= g.PushTime }

// summaryBatch is how many groups RangeSummaries summarises per hold of the
// lock.
const summaryBatch = 256

// RangeSummaries calls fn with the summary of each exposed group (see
// SetExposure, as Range) until fn returns false, ordered by the value of
// the job label, then by key. It holds the
// lock to list the keys, then once per batch of 256 groups to copy out
// their counts and references to their (immutable) time gauges, which are
// read after the lock is released; fn runs without the lock. Its memory is
// the list of keys and one batch, whatever the size of the groups. Groups
// removed meanwhile are skipped, groups added are not visited.
func (s *Store) RangeSummaries(fn func(GroupSummary) bool) {
	type jobKey struct {
		job string
		key GroupKey
	}
	s.mu.Lock()
	keys := make([]jobKey, 0, len(s.groups))
	x := s.exposer()
	for k, g := range s.groups {
		if x.exposes(g) {
			keys = append(keys, jobKey{key: k})
		}
	}
	s.mu.Unlock()
	for i := range keys {
		keys[i].job = keys[i].key.job()
	}
	slices.SortFunc(keys, func(a, b jobKey) int {
		return cmp.Or(strings.Compare(a.job, b.job), strings.Compare(a.key.enc, b.key.enc))
	})
	batch := make([]summaryRef, 0, summaryBatch)
	for len(keys) > 0 {
		n := min(len(keys), summaryBatch)
		batch = batch[:0]
		s.mu.Lock()
		for _, jk := range keys[:n] {
			if g := s.groups[jk.key]; g != nil {
				batch = append(batch, summaryRefOf(g))
			}
		}
		s.mu.Unlock()
		keys = keys[n:]
		for i := range batch {
			if !fn(batch[i].summary()) {
				return
			}
		}
	}
}

// summaryRef is a group's summary copied out under the lock, its time
// gauges still to read.
type summaryRef struct {
	sum           GroupSummary
	push, failure *family
}

// summaryRefOf copies out g. The caller holds s.mu.
func summaryRefOf(g *group) summaryRef {
	r := summaryRef{sum: GroupSummary{Key: g.key, Version: g.version, Deadline: g.deadline, Series: g.series, Families: len(g.slots)}}
	if sl := g.slot(PushTimeName); sl != nil {
		r.push = sl.fam
		r.sum.Families--
	}
	if sl := g.slot(PushFailureTimeName); sl != nil {
		r.failure = sl.fam
		r.sum.Families--
	}
	return r
}

func (r summaryRef) summary() GroupSummary {
	r.sum.PushTime = timeGaugeValue(r.push)
	r.sum.FailureTime = timeGaugeValue(r.failure)
	return r.sum
}

// timeGaugeValue is the value of the first metric of a time gauge family,
// 0 if there is none. The store renders these gauges itself, one sample
// line without a timestamp, so the value is the line's last field; other
// lines are decoded.
func timeGaugeValue(f *family) float64 {
	if f == nil {
		return 0
	}
	if line, ok := bytes.CutSuffix(f.text(new([]byte)), []byte{'\n'}); ok && bytes.IndexByte(line, '\n') < 0 {
		if i := bytes.LastIndexByte(line, ' '); i >= 0 {
			if v, err := strconv.ParseFloat(string(line[i+1:]), 64); err == nil {
				return v
			}
		}
	}
	mf, err := f.decode()
	if err != nil || len(mf.GetMetric()) == 0 {
		return 0
	}
	return mf.Metric[0].GetGauge().GetValue()
}

// SummaryOf summarises a snapshot the way RangeSummaries summarises a
// stored group, for groups that come from other peers.
func SummaryOf(g GroupSnapshot) GroupSummary {
	sum := GroupSummary{Key: g.Key, Version: g.Version, Deadline: g.Deadline}
	for _, fs := range g.Families {
		switch fs.Family.GetName() {
		case PushTimeName:
			sum.PushTime, _ = g.TimeGauge(PushTimeName)
		case PushFailureTimeName:
			sum.FailureTime, _ = g.TimeGauge(PushFailureTimeName)
		default:
			sum.Families++
		}
		sum.Series += sampleLines(fs.Family)
	}
	return sum
}

// sampleLines counts the sample lines of mf in the text exposition: a
// histogram's buckets (with the +Inf bucket the text adds when none is
// pushed), _sum and _count each count, a summary's quantiles, _sum and
// _count.
func sampleLines(mf *dto.MetricFamily) int {
	n := 0
	for _, m := range mf.GetMetric() {
		switch {
		case m.GetHistogram() != nil:
			bs := m.GetHistogram().GetBucket()
			n += len(bs) + 2
			if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].GetUpperBound(), 1) {
				n++
			}
		case m.GetSummary() != nil:
			n += len(m.GetSummary().GetQuantile()) + 2
		default:
			n++
		}
	}
	return n
}

// job is the value of the key's job label without splitting the key: the
// value after the name "job", "" if it has none.
func (k GroupKey) job() string {
	rest := k.enc
	for rest != "" {
		name, after, _ := strings.Cut(rest, sep)
		value, next, _ := strings.Cut(after, sep)
		if name == "job" {
			return value
		}
		rest = next
	}
	return ""
}
