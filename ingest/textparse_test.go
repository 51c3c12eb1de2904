package ingest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// clientBodies returns the text bodies real clients wrote: the files in
// testdata/clients (the Python client, prom-client), node_exporter's
// node.prom, and client_golang's text encoder run now over a registry of
// every metric type.
func clientBodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	bodies := map[string][]byte{"node_exporter": readTestdata(tb, "node.prom"), "client_golang": clientGolangText(tb)}
	files, err := filepath.Glob(filepath.Join("testdata", "clients", "*.prom"))
	require.NoError(tb, err)
	require.NotEmpty(tb, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(tb, err)
		bodies[filepath.Base(f)] = b
	}
	return bodies
}

// clientGolangText is what client_golang's push package sends with
// Format(text): every metric type, escapes in HELP and label values,
// special values, a timestamp.
func clientGolangText(tb testing.TB) []byte {
	tb.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "job_rows_total", Help: "Rows \\ written.\nPer table."}, []string{"table", "db"})
	c.WithLabelValues("users", "main").Add(42)
	c.WithLabelValues("a \"b\"\n\\c", "ünï").Add(1)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "job_last_success_seconds", Help: "Last success."})
	g.Set(1.7e9)
	nan := prometheus.NewGauge(prometheus.GaugeOpts{Name: "job_ratio", Help: "A ratio.", ConstLabels: prometheus.Labels{"kind": "nan"}})
	nan.Set(math.NaN())
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "job_duration_seconds", Help: "Durations.", Buckets: []float64{0.1, 1, 10}}, []string{"step"})
	h.WithLabelValues("load").Observe(0.5)
	h.WithLabelValues("load").Observe(3)
	h.WithLabelValues("extract").Observe(20)
	s := prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "job_batch_size", Help: "Batch sizes.", Objectives: map[float64]float64{0.5: 0.05, 0.99: 0.001}}, []string{"step"})
	s.WithLabelValues("load").Observe(100)
	u := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "job_untyped", Help: ""}, func() float64 { return math.Inf(-1) })
	ts := prometheus.NewMetricWithTimestamp(timeOf(1_700_000_000_123), prometheus.MustNewConstMetric(
		prometheus.NewDesc("job_stamped", "With a timestamp.", nil, nil), prometheus.GaugeValue, 7))
	reg.MustRegister(c, g, nan, h, s, u, constCollector{ts})
	mfs, err := reg.Gather()
	require.NoError(tb, err)
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		require.NoError(tb, enc.Encode(mf))
	}
	return b.Bytes()
}

// expfmtText parses b with expfmt, the reference, as decodeText would.
func expfmtText(b []byte, scheme model.ValidationScheme) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(scheme)
	return p.TextToMetricFamilies(bytes.NewReader(b))
}

// requireSameFamilies fails unless got and want hold the same families,
// compared as deterministic protobuf bytes (NaNs compare by their bits).
func requireSameFamilies(tb testing.TB, want, got map[string]*dto.MetricFamily) {
	tb.Helper()
	require.ElementsMatch(tb, keysOf(want), keysOf(got))
	opts := proto.MarshalOptions{Deterministic: true}
	for name, w := range want {
		wb, err := opts.Marshal(w)
		require.NoError(tb, err)
		gb, err := opts.Marshal(got[name])
		require.NoError(tb, err)
		require.Equal(tb, wb, gb, "family %q:\nwant %v\ngot  %v", name, w, got[name])
	}
}

func keysOf(m map[string]*dto.MetricFamily) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestScanTextReadsRealClients holds that the fast parser takes what real
// clients send (nothing is left to expfmt) and builds what expfmt builds.
func TestScanTextReadsRealClients(t *testing.T) {
	for name, body := range clientBodies(t) {
		t.Run(name, func(t *testing.T) {
			got, ok := scanText(body)
			require.True(t, ok, "scanText left the body of %s to expfmt", name)
			want, err := expfmtText(body, model.LegacyValidation)
			require.NoError(t, err)
			require.NotEmpty(t, want)
			requireSameFamilies(t, want, got)
		})
	}
}

// TestScanTextDeclines lists inputs the fast parser leaves to expfmt:
// errors (whose text must be expfmt's) and shapes outside its grammar.
func TestScanTextDeclines(t *testing.T) {
	for _, in := range []string{
		"m 1",                        // no newline after a sample
		"m 1 \n",                     // a blank after the value
		"m 1 2 \n",                   // a blank after the timestamp
		"m{a=\"1\",a=\"2\"} 1\n",     // duplicate label name
		"m{__name__=\"x\"} 1\n",      // reserved label name
		"{\"m\"} 1\n",                // the name inside the braces
		"\"m\" 1\n",                  // a quoted name
		"m{\"a\"=\"1\"} 1\n",         // a quoted label name
		"m{a=\"\\t\"} 1\n",           // an unknown escape
		"m{a=\"\xff\"} 1\n",          // invalid UTF-8 in a label value
		"m 1_000\n",                  // an underscore in the value
		"m 0x1p3\n",                  // a hex float
		"# TYPE m gauge_histogram\n", // a gauge histogram
		"# TYPE m counter\n# TYPE m gauge\n",
		"# HELP m a\n# HELP m b\n",
		"# HELP m a\\t\n",
		"m 1\n# TYPE m counter\n", // TYPE after samples
		"# TYPE h histogram\nh_count -1.5\n",
		"# TYPE m \u212aounter\n", // a TYPE that folds only by Unicode
		"m-1 5\n",                 // expfmt reads this as m=-1 at 5 ms; the fast path leaves it
		"# comment without newline",
	} {
		_, ok := scanText([]byte(in))
		require.False(t, ok, "%q", in)
		// What decodeBody makes of it is expfmt's decision, error text included.
		got, gotErr := decodeText(strings.NewReader(in), false)
		want, wantErr := expfmtText([]byte(in), model.LegacyValidation)
		if wantErr != nil {
			require.EqualError(t, gotErr, wantErr.Error(), "%q", in)
			continue
		}
		require.NoError(t, gotErr)
		requireSameFamilies(t, want, got)
	}
}

// TestScanTextAccepts checks shapes the fast parser must take, against
// expfmt.
func TestScanTextAccepts(t *testing.T) {
	for _, in := range []string{
		"",
		"\n\n  \t\n",
		"   ",
		"m 1\n",
		"  m\t{ a = \"1\" , b=\"x\\\\y\\\"z\\n\" , } 1.5e3 -12\n",
		"m{} NaN\nm{} +Inf\n",
		"#\n# \n#HELP\n# HELP \n# random comment\n# HELP m\n# TYPE m\n",
		"# HELP m \n# TYPE m cOuNtEr\nm 3\n",
		"# HELP m a \\\"b\\\" \\\\ \\n c\n# TYPE m gauge\nm{x=\"\"} -0\n",
		"# TYPE s summary\ns{quantile=\"0.5\",a=\"1\"} 1\ns_sum{a=\"1\"} 2\ns{a=\"1\",quantile=\"0.9\"} 3\ns_count{a=\"1\"} 4.7\ns{quantile=\"NaN\"} 5\n",
		"# TYPE h histogram\nh_bucket{le=\"1\",a=\"1\"} 1\nh_bucket{a=\"1\",le=\"+Inf\"} 2.5\nh_sum{a=\"1\"} 3\nh_count{a=\"1\"} 2\nh{le=\"2\"} 7 100\nh_bucket 9\n",
		"# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 1\n",
		"# TYPE x_count counter\nx_count 1\n# TYPE x summary\nx_count 2\n",
		"a 1\nb 2\na 3\n",
		"a 1\na 2\nb 3\na 4\nb 5\nc 6\nb 7\n",
		"# TYPE h histogram\nh_bucket{a=\"1\",le=\"1\"} 1\nh_bucket{a=\"2\",le=\"1\"} 1\nh_bucket{a=\"1\",le=\"2\"} 2\n" +
			"h_bucket{a=\"1\",le=\"+Inf\"} 2\nh_bucket{a=\"2\",le=\"+Inf\"} 3\nh_bucket{a=\"3\",le=\"+Inf\"} 3\n",
		"# TYPE m untyped\nm{le=\"x\",quantile=\"y\"} 1\n",
	} {
		got, ok := scanText([]byte(in))
		require.True(t, ok, "%q", in)
		for _, scheme := range []model.ValidationScheme{model.LegacyValidation, model.UTF8Validation} {
			want, err := expfmtText([]byte(in), scheme)
			require.NoError(t, err, "%q", in)
			requireSameFamilies(t, want, got)
		}
	}
}

// TestScanTextPooledReuse parses the accepted shapes, real clients' bodies
// and a push too big to be pooled again and again, in shuffled orders, with
// parsers from the pool: each parse builds what a fresh parser builds, and
// the families of earlier parses are not read after their release.
func TestScanTextPooledReuse(t *testing.T) {
	var bodies [][]byte
	for _, b := range clientBodies(t) {
		bodies = append(bodies, b)
	}
	var big strings.Builder
	big.WriteString("# TYPE big counter\n")
	for i := range 8000 { // more than maxPooledBytes of slabs
		fmt.Fprintf(&big, "big{i=\"%d\"} %d\n", i, i)
	}
	bodies = append(bodies, []byte(big.String()),
		[]byte("# TYPE h histogram\nh_bucket{le=\"1\",a=\"1\"} 1\nh_bucket{a=\"1\",le=\"+Inf\"} 2\nh_sum{a=\"1\"} 3\nh_count{a=\"1\"} 2\n"),
		[]byte("m{a=\"1\"} 1\nm{a=\"2\"} 2\nn 3 4\n"),
		[]byte("m{a=\"1\"} 1\nn 2\nm{a=\"2\"} 3\nn 4\nm{a=\"3\"} 5\n"), // interleaved families
		[]byte("m{a=\"1\"} 1\nm{a=\"1\"} 2\nx{"),                       // declined after some lines
	)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
		for i, b := range bodies {
			want, wantOK := scanText(b)
			got, release, ok := scanTextPooled(b, (round+i)%2 == 0)
			require.Equal(t, wantOK, ok, "round %d body %d", round, i)
			if !ok {
				require.Nil(t, got)
				continue
			}
			requireSameFamilies(t, want, got)
			release()
		}
	}
}

// TestPooledParsersStayBounded pushes shapes that make a parser's memory
// grow without many lines (one HELP text of '=' reserves a label pair per
// '='; many empty protobuf families grow the family map; many families
// with new names and HELP texts fill the interned strings), and a normal
// push: no parser or decoder left in a pool holds more than
// maxPooledBytes, or more interned strings than maxInternedBytes,
// whichever of them the pool hands out next.
func TestPooledParsersStayBounded(t *testing.T) {
	normal := readTestdata(t, "node.prom")
	equals := []byte("# HELP a " + strings.Repeat("=", 200_000) + "\na{b=\"c\"} 1\n")
	names := func(round int) string {
		var b strings.Builder
		for i := range 1000 {
			fmt.Fprintf(&b, "# HELP name_%d_%d_%s Help text of family %d.\nname_%d_%d_%[3]s 1\n", round, i, strings.Repeat("x", 40), i, round, i)
		}
		return b.String()
	}
	for _, body := range [][]byte{normal, equals, normal, []byte(names(0)), []byte(names(1)), []byte(names(2)), normal} {
		fams, release, ok := scanTextPooled(body, true)
		require.True(t, ok)
		require.NotEmpty(t, fams)
		release()
		for range 4 {
			p := textParsers.Get().(*textParser)
			require.LessOrEqual(t, p.footprint(), maxPooledBytes, "a pooled text parser")
			requirePooledSlabs(t, &p.clientSlabs, p.footprint)
			defer textParsers.Put(p)
		}
	}
	var empties []*dto.MetricFamily
	for i := range 1 << 16 {
		empties = append(empties, &dto.MetricFamily{Name: proto.String(fmt.Sprintf("f%d", i))})
	}
	protoOf := func(text string) []byte { return encodeDelimited(t, sortedFamilies(parseText(t, text))...) }
	for _, body := range [][]byte{protoOf(string(normal)), encodeDelimited(t, empties...), protoOf(names(0)), protoOf(names(1)), protoOf(string(normal))} {
		_, release, err := decodeProtoPooled(body, true)
		require.NoError(t, err)
		release()
		for range 4 {
			d := protoDecoders.Get().(*protoSlabs)
			require.LessOrEqual(t, d.footprint(), maxPooledBytes, "a pooled protobuf decoder")
			requirePooledSlabs(t, &d.clientSlabs, d.footprint)
			defer protoDecoders.Put(d)
		}
	}
}

// requirePooledSlabs checks the slabs of a parser in a pool: they hand out
// nothing, hold no pointer of the push they served, and keep a bounded
// set of interned strings, which footprint counts.
func requirePooledSlabs(t *testing.T, c *clientSlabs, footprint func() int) {
	t.Helper()
	require.Empty(t, c.fams)
	require.Empty(t, c.labels)
	require.False(t, slices.ContainsFunc(c.metricPtrs.buf[:cap(c.metricPtrs.buf)], func(m *dto.Metric) bool { return m != nil }), "metric pointers kept")
	require.False(t, slices.ContainsFunc(c.bucketPtrs.buf[:cap(c.bucketPtrs.buf)], func(b *dto.Bucket) bool { return b != nil }), "bucket pointers kept")
	require.Empty(t, c.metricPtrs.buf)
	require.Empty(t, c.bucketPtrs.buf)
	require.LessOrEqual(t, c.names.bytes, maxInternedBytes, "interned strings")
	with, names := footprint(), c.names
	c.names = interned{}
	without := footprint()
	c.names = names
	require.Equal(t, names.bytes, with-without, "the interned strings are not counted")
}

// FuzzScanText is the differential test of the fast parser: for every
// input it takes, expfmt (with either name validation) takes it too and
// builds the same families. Inputs it declines go to expfmt, which makes
// the decision. .ci/run runs it for a fixed time.
func FuzzScanText(f *testing.F) {
	for _, b := range clientBodies(f) {
		f.Add(b)
	}
	for _, s := range []string{
		"m{a=\"1\"} 1\n", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n", "m 1 123\n", "# HELP m \\\\ \\n\nm NaN\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanText(body)
		// A pooled parser, reused from input to input, builds the same.
		pooled, release, pok := scanTextPooled(body, len(body)%2 == 0)
		require.Equal(t, ok, pok, "a pooled parser decides %q otherwise", body)
		if !ok {
			return
		}
		requireSameFamilies(t, got, pooled)
		release()
		for _, scheme := range []model.ValidationScheme{model.LegacyValidation, model.UTF8Validation} {
			want, err := expfmtText(body, scheme)
			require.NoError(t, err, "scanText took %q, expfmt refuses it", body)
			requireSameFamilies(t, want, got)
		}
	})
}

func timeOf(ms int64) time.Time { return time.UnixMilli(ms) }

// constCollector collects fixed metrics.
type constCollector []prometheus.Metric

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}
