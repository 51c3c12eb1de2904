package store_test

import (
	"time"

	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

// exposeFixture returns pushes covering every type, HELP set, unset and
// empty, a HELP conflict, escaping, a family without metrics and a family
// shared with the gateway's own ones.
func exposeFixture(t testing.TB) []store.Push {
	batch, api, a0 := key("job", "batch"), key("job", "api", "instance", "i1"), key("job", "a0")
	return []store.Push{
		textPush(t, batch, true, t1, `# HELP jobs_total Jobs processed.\nSecond line \\ backslash.
# TYPE jobs_total counter
jobs_total{queue="b"} 7
jobs_total{queue="a"} 42
jobs_total 1
# TYPE temperature gauge
temperature -21.5
# HELP rpc_seconds RPC "latency".\nSecond \\ line.
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds{quantile="0.99"} 0.8
rpc_seconds_sum 5.25
rpc_seconds_count 10
# TYPE size_bytes histogram
size_bytes_bucket{le="100"} 1
size_bytes_bucket{le="1000"} 3
size_bytes_bucket{le="+Inf"} 4
size_bytes_sum 2500.5
size_bytes_count 4
# TYPE go_goroutines gauge
go_goroutines 5
# HELP helpless Has HELP in a later group only.
helpless 2
`),
		famPush(batch, false, t2, fam("empty_family", dto.MetricType_COUNTER, proto.String("Never shown."))),
		textPush(t, api, true, t1, `# HELP jobs_total Other help.
# TYPE jobs_total counter
jobs_total 3
untyped_thing{path="C:\\dir\n\"q\""} 1e+06
`),
		famPush(api, false, t1, fam("proto_help", dto.MetricType_GAUGE, proto.String(""), gaugeM(1.5))),
		textPush(t, a0, true, t1, "helpless 1\n"),
	}
}

// ownFamilies stand for the gateway's own families gathered at scrape time.
func ownFamilies() []*dto.MetricFamily {
	return []*dto.MetricFamily{
		fam("go_threads", dto.MetricType_GAUGE, proto.String("Number of OS threads created."), gaugeM(8)),
		fam("go_goroutines", dto.MetricType_GAUGE, proto.String("Number of goroutines that currently exist."), gaugeM(10)),
		fam("go_unused", dto.MetricType_COUNTER, proto.String("An own family without series.")),
	}
}

func fixtureStore(t testing.TB) *store.Store {
	s, _ := newStore(t, map[string]dto.MetricType{"go_goroutines": dto.MetricType_GAUGE})
	for _, p := range exposeFixture(t) {
		apply(t, s, p)
	}
	return s
}

func TestWriteExpositionGolden(t *testing.T) {
	s := fixtureStore(t)
	requireGolden(t, "expose/text.golden", scrape(t, s, store.FormatText, ownFamilies()...))
	requireGolden(t, "expose/openmetrics.golden", scrape(t, s, store.FormatOpenMetrics, ownFamilies()...))
	requireGolden(t, "expose/protobuf.golden", protoDump(t, scrape(t, s, store.FormatProtoDelim, ownFamilies()...)))
}

// protoDump turns a delimited protobuf exposition into readable lines: a
// header per family, one line per metric. (prototext and protojson
// randomise their whitespace, so they make no golden files.)
func protoDump(t testing.TB, b []byte) []byte {
	t.Helper()
	var out strings.Builder
	for _, mf := range decodeDelimited(t, b) {
		fmt.Fprintf(&out, "family name=%q type=%s", mf.GetName(), mf.GetType())
		if mf.Help != nil {
			fmt.Fprintf(&out, " help=%q", mf.GetHelp())
		}
		if mf.Unit != nil {
			fmt.Fprintf(&out, " unit=%q", mf.GetUnit())
		}
		out.WriteByte('\n')
		for _, m := range mf.Metric {
			out.WriteString("  metric {")
			for i, lp := range m.Label {
				if i > 0 {
					out.WriteByte(',')
				}
				fmt.Fprintf(&out, "%s=%q", lp.GetName(), lp.GetValue())
			}
			out.WriteString("}")
			dumpValue(&out, m)
			out.WriteByte('\n')
		}
	}
	return []byte(out.String())
}

func dumpValue(out *strings.Builder, m *dto.Metric) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch {
	case m.Counter != nil:
		fmt.Fprintf(out, " counter=%s", f(m.Counter.GetValue()))
	case m.Gauge != nil:
		fmt.Fprintf(out, " gauge=%s", f(m.Gauge.GetValue()))
	case m.Untyped != nil:
		fmt.Fprintf(out, " untyped=%s", f(m.Untyped.GetValue()))
	case m.Summary != nil:
		fmt.Fprintf(out, " summary count=%d sum=%s", m.Summary.GetSampleCount(), f(m.Summary.GetSampleSum()))
		for _, q := range m.Summary.Quantile {
			fmt.Fprintf(out, " q%s=%s", f(q.GetQuantile()), f(q.GetValue()))
		}
	case m.Histogram != nil:
		fmt.Fprintf(out, " histogram count=%d sum=%s", m.Histogram.GetSampleCount(), f(m.Histogram.GetSampleSum()))
		for _, b := range m.Histogram.Bucket {
			fmt.Fprintf(out, " le%s=%d", f(b.GetUpperBound()), b.GetCumulativeCount())
		}
	}
}

func decodeDelimited(t testing.TB, b []byte) []*dto.MetricFamily {
	t.Helper()
	mfs, err := decodeDelimitedErr(b)
	require.NoError(t, err)
	return mfs
}

func decodeDelimitedErr(b []byte) ([]*dto.MetricFamily, error) {
	r := bytes.NewReader(b)
	var mfs []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := protodelim.UnmarshalFrom(r, mf)
		if errors.Is(err, io.EOF) {
			return mfs, nil
		}
		if err != nil {
			return nil, err
		}
		mfs = append(mfs, mf)
	}
}

// mergedFamilies builds, from snapshots, the families a scrape must expose:
// per name (sorted) the own family's header and metrics, then every group's
// metrics in key order; without an own family, the header of the first
// group with metrics. Families without metrics are left out.
func mergedFamilies(groups []store.GroupSnapshot, own []*dto.MetricFamily) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	for _, o := range own {
		byName[o.GetName()] = proto.Clone(o).(*dto.MetricFamily)
	}
	for _, g := range groups {
		for _, fs := range g.Families {
			mf := fs.Family
			if len(mf.Metric) == 0 {
				continue
			}
			m := byName[mf.GetName()]
			if m == nil {
				m = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Unit: mf.Unit}
				byName[mf.GetName()] = m
			}
			m.Metric = append(m.Metric, mf.Metric...)
		}
	}
	var out []*dto.MetricFamily
	for _, mf := range byName {
		if len(mf.Metric) > 0 {
			out = append(out, mf)
		}
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// TestWriteExpositionMatchesExpfmt checks that concatenating pre-rendered
// bytes gives exactly what expfmt writes for the merged families.
func TestWriteExpositionMatchesExpfmt(t *testing.T) {
	s := fixtureStore(t)
	want := mergedFamilies(s.Snapshot(), ownFamilies())

	var text, om bytes.Buffer
	for _, mf := range want {
		_, err := expfmt.MetricFamilyToText(&text, mf)
		require.NoError(t, err)
		omf := proto.Clone(mf).(*dto.MetricFamily)
		omf.Unit = nil
		_, err = expfmt.MetricFamilyToOpenMetrics(&om, omf)
		require.NoError(t, err)
	}
	_, err := expfmt.FinalizeOpenMetrics(&om)
	require.NoError(t, err)
	require.Equal(t, text.String(), string(scrape(t, s, store.FormatText, ownFamilies()...)))
	require.Equal(t, om.String(), string(scrape(t, s, store.FormatOpenMetrics, ownFamilies()...)))

	got := decodeDelimited(t, scrape(t, s, store.FormatProtoDelim, ownFamilies()...))
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, proto.Equal(want[i], got[i]), "family %s:\nwant %v\ngot  %v", want[i].GetName(), want[i], got[i])
	}
}

func TestWriteExpositionHelp(t *testing.T) {
	text := func(body string) func(store.GroupKey) store.Push {
		return func(k store.GroupKey) store.Push { return textPush(t, k, true, t1, body) }
	}
	cases := []struct {
		name   string
		pushes []func(store.GroupKey) store.Push // to groups job=g0, g1, …
		own    *dto.MetricFamily
		want   string // header lines of family m
	}{
		{
			name:   "the smallest grouping key decides",
			pushes: []func(store.GroupKey) store.Push{text("# HELP m first\nm 1\n"), text("# HELP m second\nm 1\n")},
			want:   "# HELP m first\n# TYPE m untyped\n",
		},
		{
			name:   "including no HELP at all",
			pushes: []func(store.GroupKey) store.Push{text("m 1\n"), text("# HELP m second\nm 1\n")},
			want:   "# TYPE m untyped\n",
		},
		{
			name: "a group without metrics does not decide",
			pushes: []func(store.GroupKey) store.Push{
				func(k store.GroupKey) store.Push {
					return famPush(k, true, t1, fam("m", dto.MetricType_UNTYPED, proto.String("first")))
				},
				text("# HELP m second\nm 1\n"),
			},
			want: "# HELP m second\n# TYPE m untyped\n",
		},
		{
			name:   "the gateway's own family wins",
			pushes: []func(store.GroupKey) store.Push{text("# HELP m first\n# TYPE m gauge\nm 1\n")},
			own:    fam("m", dto.MetricType_GAUGE, proto.String("own help"), gaugeM(3)),
			want:   "# HELP m own help\n# TYPE m gauge\nm 3\n",
		},
		{
			name:   "even when it has no series",
			pushes: []func(store.GroupKey) store.Push{text("# HELP m first\n# TYPE m gauge\nm 1\n")},
			own:    fam("m", dto.MetricType_GAUGE, proto.String("own help")),
			want:   "# HELP m own help\n# TYPE m gauge\nm{",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outputs := map[string]bool{}
			for _, order := range [][]int{{0, 1}, {1, 0}} {
				s, _ := newStore(t, nil)
				for _, i := range order {
					if i < len(tc.pushes) {
						apply(t, s, tc.pushes[i](key("job", "g"+string(rune('0'+i)))))
					}
				}
				var own []*dto.MetricFamily
				if tc.own != nil {
					own = append(own, tc.own)
				}
				out := string(scrape(t, s, store.FormatText, own...))
				require.Contains(t, out, tc.want)
				outputs[out] = true
			}
			require.Len(t, outputs, 1, "the output must not depend on the order of pushes")
		})
	}
}

func TestWriteExpositionOwnTypeConflictDropsPushed(t *testing.T) {
	s, _ := newStore(t, nil) // go_goroutines not reserved: the check cannot know
	apply(t, s, textPush(t, key("job", "j"), true, t1, "# TYPE go_goroutines counter\ngo_goroutines 1\n"))
	out := string(scrape(t, s, store.FormatText, ownFamilies()...))
	require.Contains(t, out, "# TYPE go_goroutines gauge\ngo_goroutines 10\n# HELP go_threads")
	parseText(t, out)
}

func TestWriteExpositionOpenMetricsIsCached(t *testing.T) {
	s := fixtureStore(t)
	first := scrape(t, s, store.FormatOpenMetrics)
	require.Equal(t, first, scrape(t, s, store.FormatOpenMetrics))
	// A new push replaces the family values, and with them the cache.
	apply(t, s, textPush(t, key("job", "batch"), false, t2, "# TYPE temperature gauge\ntemperature 30\n"))
	second := scrape(t, s, store.FormatOpenMetrics)
	require.NotEqual(t, first, second)
	require.Contains(t, string(second), "temperature{instance=\"\",job=\"batch\"} 30.0\n")
	require.True(t, bytes.HasSuffix(second, []byte("# EOF\n")))
}

func TestWriteExpositionEmpty(t *testing.T) {
	s, _ := newStore(t, nil)
	require.Empty(t, scrape(t, s, store.FormatText))
	require.Empty(t, scrape(t, s, store.FormatProtoDelim))
	require.Equal(t, "# EOF\n", string(scrape(t, s, store.FormatOpenMetrics)))
	require.Error(t, s.WriteExposition(io.Discard, store.Format(7), nil))
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestWriteExpositionWriteError(t *testing.T) {
	s := fixtureStore(t)
	for _, f := range []store.Format{store.FormatText, store.FormatProtoDelim, store.FormatOpenMetrics} {
		err := s.WriteExposition(failingWriter{}, f, ownFamilies())
		require.ErrorContains(t, err, "connection reset", f.String())
	}
}

// TestWriteExpositionForgetsRemovedFamilies covers a family that leaves a
// group while other groups keep it: by DELETE, and by a PUT without it.
func TestWriteExpositionForgetsRemovedFamilies(t *testing.T) {
	st, _ := newStore(t, nil)
	now := time.Unix(1700000000, 0)
	for _, job := range []string{"s1", "s2", "s3"} {
		apply(t, st, textPush(t, key("job", job), true, now, "a 1\nb 2\n"))
	}
	// A scrape first, so the member lists are clean when the removals come.
	require.Contains(t, string(scrape(t, st, store.FormatText)), `b{instance="",job="s3"} 2`)
	require.True(t, st.Delete(key("job", "s3")))
	apply(t, st, textPush(t, key("job", "s1"), true, now, "a 3\n"))

	out := string(scrape(t, st, store.FormatText))
	require.Contains(t, out, `a{instance="",job="s1"} 3`)
	require.Contains(t, out, `b{instance="",job="s2"} 2`)
	require.NotContains(t, out, `b{instance="",job="s1"}`)
	require.NotContains(t, out, `job="s3"`)
	checkInvariants(t, st)
}

// TestOwnTypeConflictIsLogged: a pushed family whose name an own family
// has, with another type (an own family missing from Config.Reserved), is
// left out of the scrape, and the warning names both types.
func TestOwnTypeConflictIsLogged(t *testing.T) {
	var logged bytes.Buffer
	s, err := store.New(store.Config{}, slog.New(slog.NewTextHandler(&logged, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	apply(t, s, textPush(t, key("job", "a"), true, t1, "# TYPE shared gauge\nshared 1\n"))
	own := fam("shared", dto.MetricType_COUNTER, proto.String("Own."), counterM(2))
	out := string(scrape(t, s, store.FormatText, own))
	require.Contains(t, out, "shared 2\n")
	require.NotContains(t, out, `shared{job="a"}`)
	require.Contains(t, logged.String(), "own_type=COUNTER pushed_type=GAUGE")
}
