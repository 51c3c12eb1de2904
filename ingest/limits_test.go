package ingest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// seriesBody is a text push of n series of family m.
func seriesBody(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "m{i=\"%d\"} 1\n", i)
	}
	return b.String()
}

// labelsBody is one series of m with n own label pairs l0..l(n-1).
func labelsBody(n int) string {
	ls := make([]string, n)
	for i := range ls {
		ls[i] = fmt.Sprintf("l%d=\"v\"", i)
	}
	return "m{" + strings.Join(ls, ",") + "} 1\n"
}

// groupingPath is /job/j with n-1 more grouping labels g0..g(n-2) (and no
// instance), so a series of the group carries n+1 label pairs.
func groupingPath(n int) string {
	p := "/job/j"
	for i := range n - 1 {
		p += fmt.Sprintf("/g%d/v", i)
	}
	return p
}

// Every limit at, just under and just over its value: within the limit the
// push reaches the store; over it the push is refused with the limit's
// status and a message naming the offender, the limit and the flag, the
// store is not called, and the rejection is counted under the limit's
// reason. With the limit at 0 the largest push passes.
func TestHandleLimits(t *testing.T) {
	const limit = 16
	tests := []struct {
		name       string
		set        func(*Config, int)
		req        func(n int) Request // a push with n of the limited thing
		wantStatus int
		wantErr    string // for n = limit+1
		wantReason string
	}{
		{"series per push", func(c *Config, v int) { c.MaxSeries = v },
			func(n int) Request { return put("/job/j", seriesBody(n)) },
			413, "push has 17 series, more than the limit of 16; raise --push.max-series", reasonSeriesPerPush},
		{"label pairs per series", func(c *Config, v int) { c.MaxLabelsPerSeries = v },
			// a, instance and job come from sanitising: they count.
			func(n int) Request { return put("/job/j/a/1", labelsBody(n-3)) },
			400, `metric "m" has 17 label pairs, more than the limit of 16; raise --push.max-labels-per-series`, reasonLabelsPerSeries},
		{"label pairs from the grouping key alone", func(c *Config, v int) { c.MaxLabelsPerSeries = v },
			func(n int) Request { return put(groupingPath(n-1), "") },
			400, "grouping labels give every series of the group 17 label pairs, more than the limit of 16; raise --push.max-labels-per-series", reasonLabelsPerSeries},
		{"label name length", func(c *Config, v int) { c.MaxLabelNameLength = v },
			func(n int) Request { return put("/job/j", "m{"+strings.Repeat("a", n)+"=\"v\"} 1\n") },
			400, `metric "m" has a label name "aaaaaaaaaaaaaaaaa" of 17 bytes, more than the limit of 16; raise --push.max-label-name-length`, reasonLabelNameLength},
		{"label value length", func(c *Config, v int) { c.MaxLabelValueLength = v },
			func(n int) Request {
				return put("/job/j", "m{l=\""+strings.Repeat("é", n/2)+strings.Repeat("v", n%2)+"\"} 1\n")
			},
			400, `metric "m" has a value of 17 bytes for label "l", more than the limit of 16; raise --push.max-label-value-length`, reasonLabelValueLength},
		{"metric name length", func(c *Config, v int) { c.MaxMetricNameLength = v },
			func(n int) Request { return put("/job/j", strings.Repeat("m", n)+" 1\n") },
			400, `metric name "mmmmmmmmmmmmmmmmm" is 17 bytes long, more than the limit of 16; raise --push.max-metric-name-length`, reasonMetricNameLength},
		{"grouping label name length", func(c *Config, v int) { c.MaxLabelNameLength = v },
			func(n int) Request { return put("/job/j/"+strings.Repeat("g", n)+"/v", "m 1\n") },
			400, `grouping label name "ggggggggggggggggg" is 17 bytes long, more than the limit of 16; raise --push.max-label-name-length`, reasonLabelNameLength},
		{"UTF-8 metric name length", func(c *Config, v int) { c.MaxMetricNameLength, c.UTF8Names = v, true },
			func(n int) Request { return put("/job/j", `{"`+utf8Name(n, "m")+`"} 1`+"\n") },
			400, `metric name "ääääääääm" is 17 bytes long, more than the limit of 16; raise --push.max-metric-name-length`, reasonMetricNameLength},
		{"UTF-8 grouping label name length", func(c *Config, v int) { c.MaxLabelNameLength, c.UTF8Names = v, true },
			func(n int) Request { return put("/job/j/"+url.PathEscape(utf8Name(n, "g"))+"/v", "m 1\n") },
			400, `grouping label name "ääääääääg" is 17 bytes long, more than the limit of 16; raise --push.max-label-name-length`, reasonLabelNameLength},
		{"grouping label value length", func(c *Config, v int) { c.MaxLabelValueLength = v },
			func(n int) Request { return put("/job/j/g/"+strings.Repeat("v", n), "m 1\n") },
			400, `grouping label "g" has a value of 17 bytes, more than the limit of 16; raise --push.max-label-value-length`, reasonLabelValueLength},
		{"job length", func(c *Config, v int) { c.MaxLabelValueLength = v },
			func(n int) Request { return put("/job/"+strings.Repeat("j", n), "") },
			400, `grouping label "job" has a value of 17 bytes, more than the limit of 16; raise --push.max-label-value-length`, reasonLabelValueLength},
	}
	for _, tt := range tests {
		for _, n := range []int{limit - 1, limit, limit + 1} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, n), func(t *testing.T) {
				var cfg Config
				tt.set(&cfg, limit)
				st := &fakeStore{}
				in, reg := newTestIngester(t, cfg, st)
				res, err := in.Handle(context.Background(), tt.req(n))
				if n <= limit {
					require.NoError(t, err)
					require.Equal(t, 200, res.Status)
					require.Len(t, st.pushes, 1)
					requireRejected(t, reg, "")
					return
				}
				require.EqualError(t, err, tt.wantErr)
				require.Equal(t, tt.wantStatus, statusOf(err))
				require.Empty(t, st.pushes, "the store must not see a push over a limit")
				requireRejected(t, reg, tt.wantReason)
			})
		}
		t.Run(tt.name+"/disabled", func(t *testing.T) {
			var cfg Config
			tt.set(&cfg, 0)
			st := &fakeStore{}
			in, _ := newTestIngester(t, cfg, st)
			_, err := in.Handle(context.Background(), tt.req(10*limit))
			require.NoError(t, err)
			require.Len(t, st.pushes, 1)
		})
	}
}

// utf8Name is a name of n bytes: two-byte runes, then pad if n is odd.
func utf8Name(n int, pad string) string {
	return strings.Repeat("ä", n/2) + strings.Repeat(pad, n%2)
}

func put(path, body string) Request {
	return Request{Method: http.MethodPut, Path: path, Body: strings.NewReader(body)}
}

// The node push, as client_golang sends it, passes the default limits.
func TestDefaultLimitsPassRealPush(t *testing.T) {
	st := &fakeStore{}
	in, _ := newTestIngester(t, DefaultConfig(), st)
	body := encodeDelimited(t, sortedFamilies(parseText(t, string(readTestdata(t, "node.prom"))))...)
	_, err := in.Handle(context.Background(), Request{
		Method: http.MethodPut, Path: benchPath, ContentType: string(fmtProtoDelim), Body: strings.NewReader(string(body)),
	})
	require.NoError(t, err)
	require.Len(t, st.pushes, 1)
}

// Whatever the map order, the error is about the first offending family by
// name, and within it about the first offending series.
func TestCheckLimitsDeterministic(t *testing.T) {
	l := limits{labels: 3, metricNameLen: 8}
	fams := parseText(t, `c{a="1",b="2",d="3"} 1
b_long_name 1
d{a="1",b="2",c="3"} 1
a 1
a{x="1",y="2",z="3"} 2
a{x="1",y="2",z="3",w="4"} 3
`)
	key, err := ParseGroupingPath("/job/j")
	require.NoError(t, err)
	Sanitize(fams, key)
	for range 20 {
		err := l.check(fams)
		require.EqualError(t, err, `metric "a" has 5 label pairs, more than the limit of 3; raise --push.max-labels-per-series`)
	}
	delete(fams, "a")
	require.EqualError(t, l.check(fams), `metric name "b_long_name" is 11 bytes long, more than the limit of 8; raise --push.max-metric-name-length`)
}

// A long offender is quoted in part, so the message stays short.
func TestLimitMessageTruncates(t *testing.T) {
	long := strings.Repeat("x", 5000)
	fams := map[string]*dto.MetricFamily{long: {Name: &long, Metric: []*dto.Metric{{}}}}
	err := limits{metricNameLen: 1024}.check(fams)
	require.EqualError(t, err, `metric name "`+strings.Repeat("x", maxShown)+`"... is 5000 bytes long, more than the limit of 1024; raise --push.max-metric-name-length`)
}

func TestQuoteShort(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"short", "node_cpu", `"node_cpu"`},
		{"exactly the limit", strings.Repeat("a", maxShown), `"` + strings.Repeat("a", maxShown) + `"`},
		{"one over", strings.Repeat("a", maxShown+1), `"` + strings.Repeat("a", maxShown) + `"...`},
		{"cut inside a rune backs off", strings.Repeat("a", maxShown-1) + "é", `"` + strings.Repeat("a", maxShown-1) + `"...`},
		{"escapes", "a\"b\n", `"a\"b\n"`},
		{"invalid utf8 is cut at most three back", strings.Repeat("\x80", maxShown+4), strconv.Quote(strings.Repeat("\x80", maxShown-3)) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, quoteShort(tt.in))
		})
	}
}

// TestSamplesCountLikeTheExposition: --push.max-series counts sample
// lines, as the store and Prometheus do; the text parser's families give
// the same count as the lines that were pushed.
func TestSamplesCountLikeTheExposition(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		want int
	}{
		"gauge":             {"# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"2\"} 2\n", 2},
		"summary":           {"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.9\"} 2\ns_sum 3\ns_count 4\n", 4},
		"histogram":         {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", 4},
		"histogram_no_+Inf": {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 2\n", 4},
	} {
		t.Run(name, func(t *testing.T) {
			fams, err := DecodeBody(strings.NewReader(tc.body), "", "", 0)
			require.NoError(t, err)
			n := 0
			for _, mf := range fams {
				n += samples(mf)
			}
			require.Equal(t, tc.want, n)
		})
	}
}
