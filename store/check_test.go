package store_test

import (
	"time"

	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

var reservedForTests = map[string]dto.MetricType{
	"go_goroutines":          dto.MetricType_GAUGE,
	"go_gc_duration_seconds": dto.MetricType_SUMMARY,
}

func TestApplyRejects(t *testing.T) {
	a, b := key("job", "a"), key("job", "b")
	hist := func(name string) *dto.MetricFamily {
		return fam(name, dto.MetricType_HISTOGRAM, nil, &dto.Metric{Histogram: &dto.Histogram{
			SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1),
			Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(1)}},
		}})
	}
	summary := func(name string, kv ...string) *dto.MetricFamily {
		return fam(name, dto.MetricType_SUMMARY, nil, &dto.Metric{Label: labels(kv...), Summary: &dto.Summary{
			SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1),
		}})
	}
	cases := []struct {
		name    string
		setup   []store.Push
		push    store.Push
		want    string // the whole detail after the prefix, or a part of it
		reason  string
		inexact bool // want is only a part of the detail
	}{
		{
			name:   "timestamp",
			push:   textPush(t, a, true, t2, "# TYPE m gauge\nm 1\nn 1 1700000000000\n"),
			want:   "pushed metrics must not have timestamps",
			reason: "timestamp",
		},
		{
			name:   "timestamp on a pushed push_time_seconds, which is otherwise ignored",
			push:   textPush(t, a, true, t2, "push_time_seconds 1 1700000000000\n"),
			want:   "pushed metrics must not have timestamps",
			reason: "timestamp",
		},
		{
			name:   "value type does not match the family type",
			push:   famPush(a, true, t2, fam("m", dto.MetricType_COUNTER, nil, gaugeM(1))),
			want:   `collected metric "m" {`,
			reason: "invalid", inexact: true,
		},
		{
			name:   "reserved label name",
			push:   textPush(t, a, true, t2, "m{__x=\"1\"} 1\n"),
			want:   "has a label with an invalid name: __x",
			reason: "invalid", inexact: true,
		},
		{
			name:   "label name that is not UTF-8",
			push:   famPush(a, true, t2, fam("m", dto.MetricType_GAUGE, nil, gaugeM(1, "a\xffb", "1"))),
			want:   "has a label with an invalid name: a\xffb",
			reason: "invalid", inexact: true,
		},
		{
			name:   "label value that is not UTF-8",
			push:   famPush(a, true, t2, fam("m", dto.MetricType_GAUGE, nil, gaugeM(1, "x", "/var/\xf4mp"))),
			want:   `has a label named "x" whose value is not utf8: "/var/\xf4mp"`,
			reason: "invalid", inexact: true,
		},
		{
			name:   "two labels with the same name",
			push:   famPush(a, true, t2, fam("m", dto.MetricType_GAUGE, nil, gaugeM(1, "x", "1", "x", "2"))),
			want:   "has two or more labels with the same name: x",
			reason: "invalid", inexact: true,
		},
		{
			name:   "explicit quantile on a summary",
			push:   famPush(a, true, t2, summary("s", "quantile", "0.5")),
			want:   `must not have an explicit "quantile" label`,
			reason: "invalid", inexact: true,
		},
		{
			name: "explicit le on a histogram",
			push: famPush(a, true, t2, func() *dto.MetricFamily {
				h := hist("h")
				h.Metric[0].Label = labels("le", "1")
				return h
			}()),
			want:   `must not have an explicit "le" label`,
			reason: "invalid", inexact: true,
		},
		{
			name:   "family name that is not a metric name",
			push:   famPush(a, true, t2, fam("foo\xffbar", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `metric family name "foo\xffbar" is not a valid metric name`,
			reason: "invalid",
		},
		{
			name:   "family name with the gateway's prefix",
			push:   famPush(a, true, t2, fam("pushring_store_groups", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `metric family name "pushring_store_groups" is reserved for the gateway's own metrics (prefix "pushring_")`,
			reason: "invalid",
		},
		{
			name:   "unknown type",
			push:   famPush(a, true, t2, fam("m", dto.MetricType(42), nil, gaugeM(1))),
			want:   `metric family "m" has unknown type 42`,
			reason: "invalid",
		},
		{
			name:   "family pushed under another name",
			push:   store.Push{Key: a, Replace: true, Time: t2, Families: map[string]*dto.MetricFamily{"x": fam("y", dto.MetricType_GAUGE, nil)}},
			want:   `metric family "y" was pushed under the name "x"`,
			reason: "invalid",
		},
		{
			name:   "duplicate series within the push",
			push:   famPush(a, true, t2, fam("m", dto.MetricType_GAUGE, nil, gaugeM(1, "x", "1"), gaugeM(2, "x", "1"))),
			want:   "was collected before with the same name and label values",
			reason: "invalid", inexact: true,
		},
		{
			name:   "duplicate series of another group",
			setup:  []store.Push{textPush(t, key("job", "j", "a", "1"), true, t1, "m{b=\"2\"} 1\n")},
			push:   textPush(t, key("job", "j", "b", "2"), true, t2, "m{a=\"1\"} 1\n"),
			want:   `collected metric "m" {`,
			reason: "inconsistent", inexact: true,
		},
		{
			name:   "type mismatch with another group",
			setup:  []store.Push{textPush(t, b, true, t1, "# TYPE tmm counter\ntmm 1\n")},
			push:   textPush(t, a, true, t2, "# TYPE tmm gauge\ntmm 1\n"),
			want:   "is not a COUNTER",
			reason: "inconsistent", inexact: true,
		},
		{
			name:   "type mismatch with another group's family without metrics",
			setup:  []store.Push{famPush(b, true, t1, fam("tmm", dto.MetricType_COUNTER, nil))},
			push:   famPush(a, true, t2, fam("tmm", dto.MetricType_GAUGE, nil)),
			want:   "gathered metric family tmm has type GAUGE but should have COUNTER",
			reason: "inconsistent",
		},
		{
			name:   "UTF-8 name that escapes to another group's name",
			setup:  []store.Push{famPush(b, true, t1, fam("a_b", dto.MetricType_GAUGE, nil, gaugeM(1)))},
			push:   famPush(a, true, t2, fam("a.b", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `metric name "a.b" is "a_b" once escaped with underscores for scrapers without UTF-8 support, which is the name of another metric`,
			reason: "inconsistent",
		},
		{
			name:   "name that another group's UTF-8 name escapes to",
			setup:  []store.Push{famPush(b, true, t1, fam("a.b", dto.MetricType_GAUGE, nil, gaugeM(1)))},
			push:   famPush(a, true, t2, fam("a_b", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `metric names "a_b" and "a.b" are the same once escaped with underscores for scrapers without UTF-8 support ("a_b")`,
			reason: "inconsistent",
		},
		{
			name:   "two UTF-8 names that escape alike",
			setup:  []store.Push{famPush(b, true, t1, fam("a.b", dto.MetricType_GAUGE, nil, gaugeM(1)))},
			push:   famPush(a, true, t2, fam("a-b", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `metric names "a-b" and "a.b" are the same once escaped with underscores for scrapers without UTF-8 support ("a_b")`,
			reason: "inconsistent",
		},
		{
			name:   "UTF-8 and legacy names in one push that escape alike",
			push:   famPush(a, true, t2, fam("a.b", dto.MetricType_GAUGE, nil, gaugeM(1)), fam("a_b", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `metric name "a.b" is "a_b" once escaped with underscores for scrapers without UTF-8 support, which is the name of another metric`,
			reason: "inconsistent",
		},
		{
			name:   "UTF-8 name that escapes with dots to another group's name",
			setup:  []store.Push{famPush(b, true, t1, fam("a__b", dto.MetricType_GAUGE, nil, gaugeM(1)))},
			push:   famPush(a, true, t2, fam("a-b", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `metric name "a-b" is "a__b" once escaped with dots for scrapers without UTF-8 support, which is the name of another metric`,
			reason: "inconsistent",
		},
		{
			name:   "UTF-8 name that escapes with values to another group's name",
			setup:  []store.Push{famPush(b, true, t1, fam("U__a_2e_b", dto.MetricType_GAUGE, nil, gaugeM(1)))},
			push:   famPush(a, true, t2, fam("a.b", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `metric name "a.b" is "U__a_2e_b" once escaped with values for scrapers without UTF-8 support, which is the name of another metric`,
			reason: "inconsistent",
		},
		{
			name:   "label name with a colon",
			push:   famPush(a, true, t2, fam("m", dto.MetricType_GAUGE, nil, gaugeM(1, "a:b", "1"))),
			want:   "has a label with an invalid name: a:b",
			reason: "invalid", inexact: true,
		},
		{
			name:   "label names that escape alike",
			push:   famPush(a, true, t2, fam("m", dto.MetricType_GAUGE, nil, gaugeM(1, "x.y", "1", "x_y", "2"))),
			want:   `collected metric "m" has label names "x.y" and "x_y", which are the same once escaped with underscores for scrapers without UTF-8 support`,
			reason: "inconsistent",
		},
		{
			name:   "type mismatch with the gateway's own family",
			push:   textPush(t, a, true, t2, "# TYPE go_goroutines counter\ngo_goroutines 1\n"),
			want:   "gathered metric family go_goroutines has type COUNTER but should have GAUGE",
			reason: "inconsistent",
		},
		{
			name:   "suffixed family next to a stored histogram",
			setup:  []store.Push{famPush(b, true, t1, hist("h"))},
			push:   textPush(t, a, true, t2, "h_count 1\n"),
			want:   `collected metric named "h_count" collides with previously collected histogram named "h"`,
			reason: "inconsistent",
		},
		{
			name:   "POST of a suffixed family next to the group's own histogram",
			setup:  []store.Push{famPush(a, true, t1, hist("h"))},
			push:   textPush(t, a, false, t2, "h_sum 1\n"),
			want:   `collected metric named "h_sum" collides with previously collected histogram named "h"`,
			reason: "inconsistent",
		},
		{
			name:   "summary next to a stored suffixed family",
			setup:  []store.Push{textPush(t, b, true, t1, "foo_sum 1\n")},
			push:   famPush(a, true, t2, summary("foo")),
			want:   `collected histogram or summary named "foo" collides with previously collected metric named "foo_sum"`,
			reason: "inconsistent",
		},
		{
			name:   "histogram and its _bucket in one push, reported once",
			push:   famPush(a, true, t2, hist("h"), fam("h_bucket", dto.MetricType_GAUGE, nil, gaugeM(1))),
			want:   `collected metric named "h_bucket" collides with previously collected histogram named "h"`,
			reason: "inconsistent",
		},
		{
			name:   "suffixed family next to the gateway's own summary",
			push:   textPush(t, a, true, t2, "go_gc_duration_seconds_count 1\n"),
			want:   `collected metric named "go_gc_duration_seconds_count" collides with previously collected summary named "go_gc_duration_seconds"`,
			reason: "inconsistent",
		},
		{
			name: "at most ten problems are listed",
			push: func() store.Push {
				var ms []*dto.Metric
				for i := range 12 {
					ms = append(ms, gaugeM(1, "__x", strconv.Itoa(i)))
				}
				return famPush(a, true, t2, fam("m", dto.MetricType_GAUGE, nil, ms...))
			}(),
			want:   "10 error(s) occurred:\n* collected metric \"m\" {",
			reason: "invalid", inexact: true,
		},
		{
			name: "several problems",
			push: famPush(a, true, t2,
				fam("m1", dto.MetricType_COUNTER, nil, gaugeM(1)),
				fam("m2", dto.MetricType_GAUGE, nil, gaugeM(1, "__x", "1"))),
			want:   "2 error(s) occurred:\n* collected metric \"m1\" {",
			reason: "invalid", inexact: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, reservedForTests)
			for _, p := range tc.setup {
				apply(t, s, p)
			}
			k := tc.push.Key
			apply(t, s, textPush(t, k, false, t1, "# TYPE keep gauge\nkeep 1\n"))
			before := scrape(t, s, store.FormatText)

			err := s.Apply(tc.push)
			require.ErrorIs(t, err, store.ErrInconsistent)
			detail, ok := strings.CutPrefix(err.Error(), "pushed metrics are invalid or inconsistent with existing metrics: ")
			require.True(t, ok, err.Error())
			if tc.inexact {
				require.Contains(t, detail, tc.want)
			} else {
				require.Equal(t, tc.want, detail)
			}
			require.Equal(t, tc.reason, store.RejectReason(err))
			checkInvariants(t, s)

			// Nothing changed but the failure time of the pushing group.
			g := group(t, s, k)
			require.Equal(t, float64(t2.UnixNano())/1e9, gaugeValue(t, g, store.PushFailureTimeName))
			require.Equal(t, 1.0, gaugeValue(t, g, "keep"))
			require.Equal(t, withoutFailureTime(before), withoutFailureTime(scrape(t, s, store.FormatText)))
		})
	}
}

// withoutFailureTime drops the push_failure_time_seconds lines.
func withoutFailureTime(b []byte) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, store.PushFailureTimeName) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestApplyAccepts(t *testing.T) {
	cases := []struct {
		name  string
		setup []store.Push
		push  store.Push
	}{
		{
			name: "own family with the same type",
			push: textPush(t, key("job", "a"), true, t1, "# TYPE go_goroutines gauge\ngo_goroutines 5\n"),
		},
		{
			name:  "summary N next to N_bucket",
			setup: []store.Push{textPush(t, key("job", "b"), true, t1, "s_bucket 1\n")},
			push: famPush(key("job", "a"), true, t1, fam("s", dto.MetricType_SUMMARY, nil,
				&dto.Metric{Summary: &dto.Summary{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1)}})),
		},
		{
			name:  "same series again in the same group",
			setup: []store.Push{textPush(t, key("job", "a"), true, t1, "m 1\n")},
			push:  textPush(t, key("job", "a"), false, t2, "m 2\n"),
		},
		{
			name: "PUT drops a histogram, so its suffixed family may come in the same push",
			setup: []store.Push{famPush(key("job", "a"), true, t1, fam("h", dto.MetricType_HISTOGRAM, nil,
				&dto.Metric{Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1)}}))},
			push: textPush(t, key("job", "a"), true, t2, "h_count 1\n"),
		},
		{
			name:  "HELP differs between groups",
			setup: []store.Push{textPush(t, key("job", "b"), true, t1, "# HELP m one\nm 1\n")},
			push:  textPush(t, key("job", "a"), true, t1, "# HELP m two\nm 1\n"),
		},
		{
			name: "label names le and quantile on other types",
			push: textPush(t, key("job", "a", "le", "1"), true, t1, "m{quantile=\"0.5\"} 1\n"),
		},
		{
			name: "negative counters, NaN and infinities",
			push: textPush(t, key("job", "a"), true, t1, "# TYPE c counter\nc -1\nd NaN\ne +Inf\n"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, reservedForTests)
			for _, p := range tc.setup {
				apply(t, s, p)
			}
			apply(t, s, tc.push)
			require.True(t, group(t, s, tc.push.Key).LastPushSuccessful())
		})
	}
}

// TestApplyHashCollisionIsNotADuplicate plants a series hash owned by
// another group whose label set differs; only comparing label sets tells it
// apart from a duplicate. Real 64-bit collisions cannot be constructed in a
// test, so the planted entry stands in for one.
func TestApplyHashCollisionIsNotADuplicate(t *testing.T) {
	s, _ := newStore(t, nil)
	apply(t, s, textPush(t, key("job", "a"), true, t1, "m{x=\"1\"} 1\n"))
	p := textPush(t, key("job", "b"), true, t1, "m{x=\"2\"} 1\n")
	undo := s.PlantCollision(key("job", "a"), p.Families["m"])
	require.NoError(t, s.Apply(p))
	undo()
	checkInvariants(t, s)

	// With a's own series planted in b as well, the index no longer knows
	// a's hashes to be a's alone: a push repeating them is looked up, b
	// named, and cleared by its labels.
	again := textPush(t, key("job", "a"), true, t1, "m{x=\"1\"} 2\n")
	undo = s.PlantCollision(key("job", "b"), again.Families["m"])
	require.NoError(t, s.Apply(again))
	undo()
	checkInvariants(t, s)
}

// TestPushedTimeGaugesMustBeGauges: a lone group must not turn its
// push_failure_time_seconds into another type, or every new group (which
// brings a gauge of that name) would be rejected from then on.
func TestPushedTimeGaugesMustBeGauges(t *testing.T) {
	st, _ := newStore(t, nil)
	now := time.Unix(1700000000, 0)
	apply(t, st, textPush(t, key("job", "pfu"), true, now, "m 1\n"))
	err := st.Apply(textPush(t, key("job", "pfu"), true, now, "push_failure_time_seconds 7\n"))
	require.ErrorIs(t, err, store.ErrInconsistent)
	require.Contains(t, err.Error(), "should have GAUGE")
	// A pushed push_time_seconds of any type is overwritten, as ever.
	apply(t, st, textPush(t, key("job", "pfu"), false, now, "# TYPE push_time_seconds counter\npush_time_seconds 7\n"))
	require.Equal(t, float64(now.UnixNano())/1e9, gaugeValue(t, group(t, st, key("job", "pfu")), store.PushTimeName))
	apply(t, st, textPush(t, key("job", "pfu2"), true, now, "m 2\n"))
	// A pushed gauge still replaces the stored failure time, as in the Pushgateway.
	apply(t, st, textPush(t, key("job", "pfu"), false, now, "# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds 7\n"))
	require.Equal(t, 7.0, gaugeValue(t, group(t, st, key("job", "pfu")), store.PushFailureTimeName))
	checkInvariants(t, st)
}
