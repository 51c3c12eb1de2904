package ingest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pushring/pushring/loadtest"
	"github.com/pushring/pushring/store"
)

// fullWayStore is a real store that does not offer repeated pushes: an
// ingester over it applies every push the full way.
type fullWayStore struct{ st *store.Store }

func (f fullWayStore) Apply(p store.Push) error     { return f.st.Apply(p) }
func (f fullWayStore) Delete(k store.GroupKey) bool { return f.st.Delete(k) }

// bodyRequest is a push whose body the api read ahead, as in production:
// only such a push can be repeated.
func bodyRequest(t testing.TB, method, path, contentType, body string) Request {
	t.Helper()
	b, err := ReadBody(strings.NewReader(body), "", 0, int64(len(body)), func(int64) error { return nil })
	require.NoError(t, err)
	return Request{Method: method, Path: path, ContentType: contentType, Body: b}
}

const textType = "text/plain; version=0.0.4"

// twinIngesters applies every push to two stores: one whose ingester
// repeats pushes, one whose ingester takes the full way every time, with
// the same clock and configuration.
type twinIngesters struct {
	fast, full     *Ingester
	fastSt, fullSt *store.Store
	fastReg        *prometheus.Registry
	fullReg        *prometheus.Registry
	now            time.Time
}

func newTwinIngesters(t *testing.T, cfg Config, scfg store.Config) *twinIngesters {
	t.Helper()
	tw := &twinIngesters{now: testNow}
	clock := func() time.Time { return tw.now }
	tw.fastReg = prometheus.NewRegistry()
	var err error
	tw.fastSt, err = store.New(scfg, nil, tw.fastReg)
	require.NoError(t, err)
	tw.fullReg = prometheus.NewRegistry()
	tw.fullSt, err = store.New(scfg, nil, tw.fullReg)
	require.NoError(t, err)
	tw.fast, err = New(cfg, tw.fastSt, clock, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NotNil(t, tw.fast.repeat, "the real store offers repeated pushes")
	tw.full, err = New(cfg, fullWayStore{tw.fullSt}, clock, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.Nil(t, tw.full.repeat)
	return tw
}

// push applies one text push to both and requires the same answer.
func (tw *twinIngesters) push(t *testing.T, method, path, body string) error {
	t.Helper()
	return tw.pushAs(t, method, path, textType, body)
}

// pushAs is push with a Content-Type.
func (tw *twinIngesters) pushAs(t *testing.T, method, path, contentType, body string) error {
	t.Helper()
	tw.now = tw.now.Add(time.Second)
	fastReq := bodyRequest(t, method, path, contentType, body)
	if tw.now.Unix()%2 == 0 {
		// As the api does before admission, which hands a template that
		// matches on to the scan; the other pushes find it themselves, as
		// a forwarded body does.
		DecodeCost(fastReq.Body.(*Body), contentType)
	}
	fastRes, fastErr := tw.fast.Handle(context.Background(), fastReq)
	fullRes, fullErr := tw.full.Handle(context.Background(), bodyRequest(t, method, path, contentType, body))
	require.Equal(t, fullRes, fastRes, "%s %s:\n%s", method, path, body)
	if fullErr != nil {
		require.EqualError(t, fastErr, fullErr.Error(), "%s %s:\n%s", method, path, body)
	} else {
		require.NoError(t, fastErr, "%s %s:\n%s", method, path, body)
	}
	return fullErr
}

// requireSame requires the two stores to hold the same: every group's
// families (push times included), deadlines and both scrape formats.
func (tw *twinIngesters) requireSame(t *testing.T, context string) {
	t.Helper()
	fast, full := tw.fastSt.Snapshot(), tw.fullSt.Snapshot()
	require.Len(t, fast, len(full), context)
	for i := range full {
		require.Equal(t, full[i].Key, fast[i].Key, context)
		require.Equal(t, full[i].Deadline, fast[i].Deadline, context)
		require.Len(t, fast[i].Families, len(full[i].Families), context)
		for j := range full[i].Families {
			a, b := full[i].Families[j], fast[i].Families[j]
			require.True(t, proto.Equal(a.Family, b.Family), "%s: family %s differs:\nfull way: %v\nrepeated: %v", context, a.Family.GetName(), a.Family, b.Family)
			require.True(t, a.Time.Equal(b.Time), "%s: family %s written at %v, repeated at %v", context, a.Family.GetName(), a.Time, b.Time)
		}
	}
	// The bytes the store counts (--store.max-bytes) are the same.
	require.Equal(t, gaugeValue(t, tw.fullReg, "pushring_store_sample_bytes"), gaugeValue(t, tw.fastReg, "pushring_store_sample_bytes"), context)
	for _, f := range []store.Format{store.FormatText, store.FormatProtoDelim} {
		var a, b bytes.Buffer
		require.NoError(t, tw.fullSt.WriteExposition(&a, f, nil))
		require.NoError(t, tw.fastSt.WriteExposition(&b, f, nil))
		require.Equal(t, a.String(), b.String(), "%s: %s scrape", context, f)
	}
}

func (tw *twinIngesters) repeated(t *testing.T) float64 {
	t.Helper()
	mfs, err := tw.fastReg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "pushring_store_repeated_pushes_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no pushring_store_repeated_pushes_total")
	return 0
}

// withValues replaces the value of every sample line of body by pick().
func withValues(body string, pick func() string) string {
	return withLineValues(body, func(string, string) string { return pick() })
}

// withLineValues returns body with the value of every sample line
// replaced by pick of the line's text before its value (its metric name
// and labels) and its value.
func withLineValues(body string, pick func(series, value string) string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(body, "\n") {
		if line == "" || line == "\n" || line[0] == '#' {
			b.WriteString(line)
			continue
		}
		i := strings.LastIndexAny(line, " \t")
		b.WriteString(line[:i+1])
		b.WriteString(pick(strings.TrimRight(line[:i], " \t"), strings.TrimSuffix(line[i+1:], "\n")))
		b.WriteString("\n")
	}
	return b.String()
}

// isCountSeries reports whether a sample line of this series holds a
// count: a histogram's _bucket or _count, a summary's _count.
func isCountSeries(series string) bool {
	name, _, _ := strings.Cut(series, "{")
	return strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_count")
}

// A push that repeats its group's last one but for the values is applied
// as new values, and leaves the store exactly as the full way does.
func TestRepeatedPushIsTheFullWay(t *testing.T) {
	nodes, err := loadtest.NodeBodies(loadtest.FormatText, 40, 1, 1)
	require.NoError(t, err)
	node := nodes[0]
	tw := newTwinIngesters(t, Config{TTL: time.Minute}, store.Config{})
	const path = "/job/edge/instance/node-1"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		body := withValues(string(node), func() string { return strconv.Itoa(rng.IntN(1000)) })
		require.NoError(t, tw.push(t, http.MethodPut, path, body))
		tw.requireSame(t, fmt.Sprintf("push %d", i))
	}
	require.Equal(t, 18.0, tw.repeated(t), "every push after the second is repeated (the first is seen, the second learnt)")

	// Another shape goes the full way twice, and is then repeated.
	other := strings.Replace(string(node), `mountpoint="/mnt/disk0"`, `mountpoint="/mnt/disk00"`, 1)
	for _, v := range []string{"4", "5", "6"} {
		require.NoError(t, tw.push(t, http.MethodPut, path, withValues(other, func() string { return v })))
		tw.requireSame(t, "another shape")
	}
	require.Equal(t, 19.0, tw.repeated(t))

	// A POST of the same lines is a shape of its own.
	for _, v := range []string{"7", "8", "9"} {
		require.NoError(t, tw.push(t, http.MethodPost, path, withValues(other, func() string { return v })))
		tw.requireSame(t, "POST")
	}
	require.Equal(t, 20.0, tw.repeated(t))
}

// The values the full way stores apart from the text, or refuses, send a
// repeated push the full way: counts that are not whole numbers or are
// negative, -0, and the answers and stores stay the same as the full
// way's whatever the values.
func TestRepeatedPushValues(t *testing.T) {
	body := `# HELP g A gauge.
# TYPE g gauge
g{a="1"} 1
g{a="2"} 2
# TYPE c counter
c 3
# TYPE h histogram
h_bucket{x="y",le="0.5"} 1
h_bucket{x="y",le="+Inf"} 2
h_sum{x="y"} 1.5
h_count{x="y"} 2
# TYPE s summary
s{quantile="0.5"} 0.25
s_sum 4
s_count 7
u 1
`
	values := []string{"0", "-0", "1", "-1", "2.5", "-2.5", "NaN", "+Inf", "-Inf", "Inf", "nan", "1e300", "-1e-300",
		"9007199254740992", "9007199254740993", "18446744073709551616", "1e20", "0.1", "1.0", "+5", "00012", ".5",
		"0x10", "1_0", "1e", "--1", "2.2250738585072014e-308", "4.9e-324", "123456789012345678",
		"14.0", "0.0", "-0.0", "-3.0", "999999.0", "1234567.0", "00.0", "+1.0", "1e+06.0", "1.5.0", "1.00"}
	tw := newTwinIngesters(t, Config{}, store.Config{})
	const path = "/job/values"
	require.NoError(t, tw.push(t, http.MethodPut, path, body))
	rng := rand.New(rand.NewPCG(3, 4))
	method := http.MethodPut
	for i := range 600 {
		b := withValues(body, func() string {
			switch rng.IntN(20) {
			case 0:
				return values[rng.IntN(len(values))]
			case 1, 2, 3:
				return clientDecimal(rng)
			}
			return strconv.Itoa(rng.IntN(50))
		})
		if rng.IntN(10) == 0 {
			method = []string{http.MethodPut, http.MethodPost}[rng.IntN(2)]
		}
		_ = tw.push(t, method, path, b)
		tw.requireSame(t, fmt.Sprintf("push %d:\n%s", i, b))
	}
	require.Greater(t, tw.repeated(t), 50.0, "the test repeats pushes")

	// Decimals on every line but the counts, which stay whole (some past
	// 1e15, which the store reads instead of copying): these pushes
	// repeat, and copy the tokens written as the store writes them.
	require.NoError(t, tw.push(t, http.MethodPut, path, body))
	require.NoError(t, tw.push(t, http.MethodPut, path, body))
	before := tw.repeated(t)
	for i := range 300 {
		b := withLineValues(body, func(series, _ string) string {
			if isCountSeries(series) {
				return []string{strconv.Itoa(rng.IntN(50)), "1e+15", "1.5e+15", "9.007199254740992e+15"}[rng.IntN(4)]
			}
			return clientDecimal(rng)
		})
		require.NoError(t, tw.push(t, http.MethodPut, path, b))
		tw.requireSame(t, fmt.Sprintf("decimals, push %d:\n%s", i, b))
	}
	require.Equal(t, before+300, tw.repeated(t), "every push of decimals repeats")

	// Values as the Python client writes them, whole numbers as "14.0":
	// these pushes repeat too.
	before = tw.repeated(t)
	for i := range 300 {
		b := withLineValues(body, func(series, _ string) string {
			if isCountSeries(series) {
				return pythonFloat(float64([]int64{rng.Int64N(50), rng.Int64N(1 << 53)}[rng.IntN(2)]))
			}
			if rng.IntN(2) == 0 {
				f, err := strconv.ParseFloat(clientDecimal(rng), 64)
				require.NoError(t, err)
				return pythonFloat(f)
			}
			whole := float64(rng.Int64N(int64(math.Pow10(1 + rng.IntN(16)))))
			if whole != 0 && rng.IntN(2) == 0 {
				whole = -whole
			}
			return pythonFloat(whole)
		})
		require.NoError(t, tw.push(t, http.MethodPut, path, b))
		tw.requireSame(t, fmt.Sprintf("Python's values, push %d:\n%s", i, b))
	}
	require.Equal(t, before+300, tw.repeated(t), "every push of Python's values repeats")
}

// pythonFloat returns f as the Python client writes a sample value
// (prometheus_client.utils.floatToGoString): as Python's repr does, in the
// shortest digits that read back as f, fixed from 1e-4 to below 1e16 with
// a digit after the point at least ("14.0") and in e-notation elsewhere;
// but a positive number of more than six whole digits the client sets out
// as d.ddde+0X, its way of writing Go's format, which has one zero too
// many from 1e10 on.
func pythonFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	if e := math.Abs(f); e != 0 && (e < 1e-4 || e >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	if dot := strings.IndexByte(s, '.'); f > 0 && dot > 6 {
		return strings.TrimRight(s[:1]+"."+s[1:dot]+s[dot+1:], "0.") + "e+0" + strconv.Itoa(dot-1)
	}
	return s
}

// The Python client's values, as its own code wrote them
// (testdata/clients/python-0.16-floats.txt), are what pythonFloat writes.
func TestPythonFloatIsTheClients(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(string(readTestdata(t, "clients/python-0.16-floats.txt"))), "\n")
	n := 0
	for _, line := range lines {
		if strings.HasPrefix(line, "#") {
			continue
		}
		hex, want, ok := strings.Cut(line, " ")
		require.True(t, ok, line)
		f, err := strconv.ParseFloat(hex, 64)
		require.NoError(t, err, line)
		require.Equal(t, want, pythonFloat(f), "the Python client writes %s (%v) so", hex, f)
		n++
	}
	require.Greater(t, n, 400)
}

// clientDecimal returns a number as a client may write it: of 1 to 17
// significant digits at a decimal exponent from -45 to 45, in strconv's
// shortest format (the store's, which a repeat copies as it came) or in
// another (which it reads and writes again).
func clientDecimal(rng *rand.Rand) string {
	digits := 1 + rng.IntN(17)
	mant := 1 + rng.Int64N(int64(math.Pow10(digits))-1)
	f, err := strconv.ParseFloat(strconv.FormatInt(mant, 10)+"e"+strconv.Itoa(rng.IntN(91)-44-digits), 64)
	if err != nil {
		panic(err)
	}
	if rng.IntN(2) == 0 {
		f = -f
	}
	switch rng.IntN(4) {
	case 0:
		return strconv.FormatFloat(f, 'e', rng.IntN(17), 64)
	case 1:
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// swappedLabels matches the first two label pairs of a line (values
// without escapes).
var swappedLabels = regexp.MustCompile(`\{([a-z_]+="[^"\\]*"),([a-z_]+="[^"\\]*")`)

// Whatever a body changes besides its values, a repeated push answers and
// stores what the full way does: lines added, dropped or moved, labels,
// HELP, TYPE, timestamps, blanks, another group's labels, clashes with
// other groups.
func TestRepeatedPushShapes(t *testing.T) {
	nodes, err := loadtest.NodeBodies(loadtest.FormatText, 40, 7, 1)
	require.NoError(t, err)
	node := nodes[0]
	bases := []string{
		string(node),
		string(readTestdata(t, "node.prom")),
		string(readTestdata(t, "clients/python-0.16.prom")),
		string(readTestdata(t, "clients/prom-client-15.1.3.prom")),
		"a 1\nb{x=\"1\"} 2\n",
		"# TYPE a gauge\na{job=\"other\"} 1\n",
		"# TYPE a gauge\na{instance=\"\"} 1\n",
		"a{x=\"1\"}  1\na{x=\"2\"}\t2\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\n", // no +Inf bucket
		"# TYPE a counter\na 1\n# TYPE a_total counter\na_total 2\n",
		"push_time_seconds 5\na 1\n",
		"a{x=\"\\\\\\n\\\"\"} 1\n",
		"# TYPE a counter\na{y=\"1\",x=\"2\"} 1\na{x=\"1\"} 2\na{y=\"0\",x=\"2\"} 3\n", // prom-client's orders
	}
	mutate := []func(rng *rand.Rand, body string) string{
		func(rng *rand.Rand, body string) string { return body },
		func(rng *rand.Rand, body string) string { // drop a line
			lines := strings.SplitAfter(body, "\n")
			i := rng.IntN(len(lines))
			return strings.Join(append(lines[:i:i], lines[i+1:]...), "")
		},
		func(rng *rand.Rand, body string) string { // duplicate a line
			lines := strings.SplitAfter(body, "\n")
			i := rng.IntN(len(lines))
			return strings.Join(append(lines[:i+1:i+1], lines[i:]...), "")
		},
		func(rng *rand.Rand, body string) string { // a timestamp
			return strings.Replace(body, "\n", " 1700000000000\n", 1+rng.IntN(3))
		},
		func(rng *rand.Rand, body string) string { return strings.Replace(body, `="`, `="z`, 1) },
		func(rng *rand.Rand, body string) string { return strings.Replace(body, "gauge", "counter", 1) },
		func(rng *rand.Rand, body string) string { return strings.TrimSuffix(body, "\n") },
		func(rng *rand.Rand, body string) string { return strings.Replace(body, " ", "  ", 1+rng.IntN(5)) },
		func(rng *rand.Rand, body string) string { return body + "extra_series 1\n" },
		func(rng *rand.Rand, body string) string { // swap two sample lines
			lines := strings.SplitAfter(body, "\n")
			i := rng.IntN(len(lines))
			j := rng.IntN(len(lines))
			if lines[i] == "" || lines[j] == "" || lines[i][0] == '#' || lines[j][0] == '#' {
				return body
			}
			lines[i], lines[j] = lines[j], lines[i]
			return strings.Join(lines, "")
		},
		func(rng *rand.Rand, body string) string { // the first two labels of lines swapped
			return swappedLabels.ReplaceAllString(body, "{$2,$1")
		},
		func(rng *rand.Rand, body string) string { return strings.Replace(body, "# HELP ", "# HELP x", 1) },
	}
	paths := []string{"/job/a", "/job/a/instance/i", "/job/b/x/1", "/job/other"}
	tw := newTwinIngesters(t, Config{TTL: time.Hour}, store.Config{MaxBytes: 1 << 20})
	rng := rand.New(rand.NewPCG(5, 6))
	// Each group's pusher keeps its body and method for a while, and
	// now and then changes them.
	current := map[string]string{}
	methods := map[string]string{}
	for i := range 2000 {
		path := paths[rng.IntN(len(paths))]
		if current[path] == "" || rng.IntN(6) == 0 {
			current[path] = bases[rng.IntN(len(bases))]
			if rng.IntN(3) == 0 {
				current[path] = mutate[rng.IntN(len(mutate))](rng, current[path])
			}
			methods[path] = []string{http.MethodPut, http.MethodPost}[rng.IntN(2)]
		}
		body := withValues(current[path], func() string { return strconv.Itoa(rng.IntN(3)) })
		method := methods[path]
		if rng.IntN(50) == 0 {
			_, err := tw.fast.Handle(context.Background(), Request{Method: http.MethodDelete, Path: path})
			require.NoError(t, err)
			_, err = tw.full.Handle(context.Background(), Request{Method: http.MethodDelete, Path: path})
			require.NoError(t, err)
			continue
		}
		_ = tw.push(t, method, path, body)
		tw.requireSame(t, fmt.Sprintf("push %d, %s %s:\n%s", i, method, path, body))
	}
	require.Greater(t, tw.repeated(t), 100.0, "the test repeats pushes")
}

// Bodies whose labels and series are not in the order the store writes
// them (prom-client's: labels as the program gave them, series as they
// were first seen, le first; the Python client's: _count before _sum,
// le="1.0" where the store writes le="1") repeat from their third push,
// and the store holds what the full way stores: each value on its own
// series.
func TestRepeatedPushInAnotherOrder(t *testing.T) {
	shuffled := `# HELP req_total Requests.
# TYPE req_total counter
req_total{route="/b",code="200"} 1
req_total{route="/a",code="500"} 1
req_total{route="/a\\\"x\"",code="200"} 1
req_total{route="/a",code="200"} 1
# TYPE lat histogram
lat_bucket{le="+Inf",code="500"} 1
lat_sum{code="500"} 1
lat_count{code="500"} 1
lat_bucket{le="1",code="200"} 1
lat_bucket{le="+Inf",code="200"} 1
lat_sum{code="200"} 1
lat_count{code="200"} 1
# TYPE q summary
q{quantile="0.50",code="500"} 1
q{quantile="0.9",code="500"} 1
q_count{code="500"} 1
q_sum{code="500"} 1
# TYPE a gauge
a{y="\\",x="\""} 1
a{y="\"",x="\\"} 1
a{y="\n",x=","} 1
a{y=",",x="\n"} 1
a{x="{}",y="}{"} 1
a{x="}{",y="{}"} 1
a{y="1",x="2",} 1
a{y="2",x="1"} 1
b{} 1
up 1
`
	// Each body with one count that is not a whole number, which sends a
	// push the full way (repeatValue): the store must judge each line as
	// the count or float it holds in its own order, where the series of
	// the histogram have other lines than in the body's.
	bodies := map[string]string{
		string(readTestdata(t, "clients/prom-client-15.1.3.prom")): `web_request_duration_seconds_bucket{le="0.5",route="/"}`,
		string(readTestdata(t, "clients/python-0.16.prom")):        `batch_duration_seconds_bucket{job_kind="nightly",le="0.5"}`,
		shuffled: `lat_bucket{le="+Inf",code="200"}`,
	}
	tw := newTwinIngesters(t, Config{}, store.Config{})
	n := 0
	for body, count := range bodies {
		for _, path := range []string{"/job/web/instance/node-1", "/job/web"} {
			for _, method := range []string{http.MethodPut, http.MethodPost} {
				for _, in := range []*Ingester{tw.fast, tw.full} { // a fresh group
					_, err := in.Handle(context.Background(), Request{Method: http.MethodDelete, Path: path})
					require.NoError(t, err)
				}
				before := tw.repeated(t)
				for push := range 6 {
					// Every line another value at every push, so that a
					// value put on another series shows.
					b := withValues(body, func() string { n++; return strconv.Itoa(n) })
					require.NoError(t, tw.push(t, method, path, b))
					tw.requireSame(t, fmt.Sprintf("push %d, %s %s:\n%s", push, method, path, b))
				}
				require.Equal(t, 4.0, tw.repeated(t)-before, "%s %s: pushes 3 to 6 repeat", method, path)
				half := strings.Replace(withValues(body, func() string { return "7" }), count+" 7\n", count+" 0.5\n", 1)
				require.Contains(t, half, count+" 0.5\n")
				require.NoError(t, tw.push(t, method, path, half))
				tw.requireSame(t, fmt.Sprintf("%s %s:\n%s", method, path, half))
				require.Equal(t, 4.0, tw.repeated(t)-before, "%s %s: a count of 0.5 goes the full way", method, path)
			}
		}
	}
}

// --store.max-bytes holds for repeated pushes: values that make the lines
// longer than the store may hold send the push the full way, which
// refuses it.
func TestRepeatedPushMaxBytes(t *testing.T) {
	tw := newTwinIngesters(t, Config{}, store.Config{MaxBytes: 260})
	body := "a{x=\"1\"} 1\na{x=\"2\"} 2\na{x=\"3\"} 3\na{x=\"4\"} 4\n"
	for range 3 {
		require.NoError(t, tw.push(t, http.MethodPut, "/job/j", body))
	}
	require.Equal(t, 1.0, tw.repeated(t))
	long := withValues(body, func() string { return strconv.FormatFloat(math.Pi*1e200, 'g', -1, 64) })
	for range 3 {
		err := tw.push(t, http.MethodPut, "/job/j", long)
		require.ErrorIs(t, err, store.ErrLimit)
		require.ErrorContains(t, err, "--store.max-bytes")
	}
	tw.requireSame(t, "after the refusals")
	require.Equal(t, 1.0, tw.repeated(t))
}

// A node's protobuf pushes, as client_golang's push package sends them
// (created timestamps, histograms without a +Inf bucket), repeat as text
// pushes do.
func TestRepeatedProtobufPushIsTheFullWay(t *testing.T) {
	bodies, err := loadtest.NodeBodies(loadtest.FormatProtobuf, 40, 1, 20)
	require.NoError(t, err)
	tw := newTwinIngesters(t, Config{TTL: time.Minute}, store.Config{})
	for i, body := range bodies {
		require.NoError(t, tw.pushAs(t, http.MethodPut, "/job/edge/instance/node-1", string(fmtProtoDelim), string(body)))
		tw.requireSame(t, fmt.Sprintf("push %d", i))
	}
	require.Equal(t, 18.0, tw.repeated(t), "every push after the second is repeated")
}

// Protobuf bodies of every kind of family, with values and a structure
// that change now and then (labels, created timestamps, exemplars, +Inf
// buckets, float and native histograms, timestamps, unsorted labels), get
// the answers and stores of the full way.
func TestRepeatedProtobufPushShapes(t *testing.T) {
	tw := newTwinIngesters(t, Config{}, store.Config{})
	rng := rand.New(rand.NewPCG(7, 8))
	specials := []float64{0, math.Copysign(0, -1), math.NaN(), math.Float64frombits(0x7ff8000000000001), math.Inf(1), math.Inf(-1), 1e300, 0.5}
	value := func() float64 {
		if rng.IntN(15) == 0 {
			return specials[rng.IntN(len(specials))]
		}
		return float64(rng.IntN(1000))
	}
	count := func() uint64 {
		if rng.IntN(15) == 0 {
			return []uint64{1 << 53, 1<<53 + 1, 127, 128, 1 << 62}[rng.IntN(5)]
		}
		return uint64(rng.IntN(200))
	}
	paths := []string{"/job/p", "/job/p/instance/i", "/job/q/x/1"}
	structure := map[string]uint64{}
	for i := range 1500 {
		path := paths[rng.IntN(len(paths))]
		if structure[path] == 0 || rng.IntN(8) == 0 {
			structure[path] = rng.Uint64() | 1
		}
		fams := protoFamilies(rand.New(rand.NewPCG(structure[path], 0)), value, count)
		body := encodeDelimited(t, fams...)
		method := http.MethodPut
		if structure[path]%3 == 0 {
			method = http.MethodPost
		}
		_ = tw.pushAs(t, method, path, string(fmtProtoDelim), string(body))
		tw.requireSame(t, fmt.Sprintf("push %d, %s %s", i, method, path))
	}
	require.Greater(t, tw.repeated(t), 200.0, "the test repeats pushes")
}

// protoFamilies builds families whose structure srng decides and whose
// values value and count give.
func protoFamilies(srng *rand.Rand, value func() float64, count func() uint64) []*dto.MetricFamily {
	labels := func() []*dto.LabelPair {
		var ls []*dto.LabelPair
		for _, n := range []string{"a", "device", "z"}[:srng.IntN(4)%3] {
			ls = append(ls, &dto.LabelPair{Name: proto.String(n), Value: proto.String(fmt.Sprintf("v\"%d\n", srng.IntN(3)))})
		}
		if len(ls) > 1 && srng.IntN(10) == 0 {
			ls[0], ls[1] = ls[1], ls[0] // unsorted
		}
		return ls
	}
	created := func() *timestamppb.Timestamp {
		if srng.IntN(2) == 0 {
			return nil
		}
		return timestamppb.New(time.Unix(1_700_000_000, int64(srng.IntN(1e9))))
	}
	var fams []*dto.MetricFamily
	g := &dto.MetricFamily{Name: proto.String("g"), Help: proto.String("A gauge."), Type: dto.MetricType_GAUGE.Enum()}
	for range 1 + srng.IntN(3) {
		g.Metric = append(g.Metric, &dto.Metric{Label: labels(), Gauge: &dto.Gauge{Value: proto.Float64(value())}})
	}
	fams = append(fams, g)
	c := &dto.MetricFamily{Name: proto.String("c_total"), Help: proto.String("A counter."), Type: dto.MetricType_COUNTER.Enum()}
	cm := &dto.Metric{Counter: &dto.Counter{Value: proto.Float64(value()), CreatedTimestamp: created()}}
	if srng.IntN(10) == 0 {
		cm.Counter.Exemplar = &dto.Exemplar{Label: []*dto.LabelPair{{Name: proto.String("trace"), Value: proto.String("x")}}, Value: proto.Float64(1)}
	}
	if srng.IntN(20) == 0 {
		cm.TimestampMs = proto.Int64(1)
	}
	c.Metric = append(c.Metric, cm)
	fams = append(fams, c)
	h := &dto.MetricFamily{Name: proto.String("h"), Help: proto.String("A histogram."), Type: dto.MetricType_HISTOGRAM.Enum()}
	hist := &dto.Histogram{SampleCount: proto.Uint64(count()), SampleSum: proto.Float64(value()), CreatedTimestamp: created()}
	for _, b := range []float64{0.1, 1, 10} {
		hist.Bucket = append(hist.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(count())})
	}
	switch srng.IntN(8) {
	case 0:
		hist.Bucket = append(hist.Bucket, &dto.Bucket{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(count())})
	case 1:
		hist.SampleCountFloat, hist.SampleCount = proto.Float64(3.5), nil
	case 2:
		hist.Schema, hist.ZeroThreshold = proto.Int32(3), proto.Float64(1e-9)
	}
	h.Metric = append(h.Metric, &dto.Metric{Label: labels()[:0], Histogram: hist})
	fams = append(fams, h)
	if srng.IntN(2) == 0 {
		s := &dto.MetricFamily{Name: proto.String("s"), Type: dto.MetricType_SUMMARY.Enum()}
		sum := &dto.Summary{SampleCount: proto.Uint64(count()), SampleSum: proto.Float64(value())}
		for _, q := range []float64{0.5, 0.9} {
			sum.Quantile = append(sum.Quantile, &dto.Quantile{Quantile: proto.Float64(q), Value: proto.Float64(value())})
		}
		s.Metric = append(s.Metric, &dto.Metric{Summary: sum})
		fams = append(fams, s)
	}
	if srng.IntN(3) == 0 {
		u := &dto.MetricFamily{Name: proto.String("u"), Type: dto.MetricType_UNTYPED.Enum()}
		u.Metric = append(u.Metric, &dto.Metric{Label: labels(), Untyped: &dto.Untyped{Value: proto.Float64(value())}})
		fams = append(fams, u)
	}
	srng.Shuffle(len(fams), func(i, j int) { fams[i], fams[j] = fams[j], fams[i] })
	return fams
}

// Once a protobuf shape repeats, a body that changes anything but values
// (a label value, a bucket bound, a quantile, HELP, a created timestamp,
// a name), each keeping every length and field the same, is not taken for
// it: every such push must store what the full way stores.
func TestRepeatedProtobufPushSameSizeChanges(t *testing.T) {
	base := func() []*dto.MetricFamily {
		return []*dto.MetricFamily{
			{Name: proto.String("g"), Help: proto.String("A gauge."), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{
				{Label: []*dto.LabelPair{{Name: proto.String("a"), Value: proto.String("x1")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}},
				{Label: []*dto.LabelPair{{Name: proto.String("a"), Value: proto.String("x2")}}, Gauge: &dto.Gauge{Value: proto.Float64(2)}},
			}},
			{Name: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{{Histogram: &dto.Histogram{
				SampleCount: proto.Uint64(3), SampleSum: proto.Float64(4),
				CreatedTimestamp: timestamppb.New(time.Unix(1_700_000_000, 0)),
				Bucket:           []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(1)}, {UpperBound: proto.Float64(2), CumulativeCount: proto.Uint64(2)}},
			}}}},
			{Name: proto.String("s"), Type: dto.MetricType_SUMMARY.Enum(), Metric: []*dto.Metric{{Summary: &dto.Summary{
				SampleCount: proto.Uint64(3), SampleSum: proto.Float64(4),
				Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(1)}},
			}}}},
		}
	}
	changes := map[string]func(fams []*dto.MetricFamily){
		"label value":  func(fams []*dto.MetricFamily) { fams[0].Metric[1].Label[0].Value = proto.String("x3") },
		"label name":   func(fams []*dto.MetricFamily) { fams[0].Metric[0].Label[0].Name = proto.String("b") },
		"bucket bound": func(fams []*dto.MetricFamily) { fams[1].Metric[0].Histogram.Bucket[1].UpperBound = proto.Float64(3) },
		"quantile":     func(fams []*dto.MetricFamily) { fams[2].Metric[0].Summary.Quantile[0].Quantile = proto.Float64(0.9) },
		"help":         func(fams []*dto.MetricFamily) { fams[0].Help = proto.String("A gauge!") },
		"created":      func(fams []*dto.MetricFamily) { fams[1].Metric[0].Histogram.CreatedTimestamp.Nanos = 5 },
		"name":         func(fams []*dto.MetricFamily) { fams[0].Name = proto.String("k") },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			tw := newTwinIngesters(t, Config{}, store.Config{})
			for range 3 {
				require.NoError(t, tw.pushAs(t, http.MethodPut, "/job/j", string(fmtProtoDelim), string(encodeDelimited(t, base()...))))
			}
			require.Equal(t, 1.0, tw.repeated(t))
			fams := base()
			change(fams)
			require.NoError(t, tw.pushAs(t, http.MethodPut, "/job/j", string(fmtProtoDelim), string(encodeDelimited(t, fams...))))
			tw.requireSame(t, name)
			require.Equal(t, 1.0, tw.repeated(t), "the changed body went the full way")
		})
	}
}

// The text scan keeps the token of a value written as the store writes
// it, which a repeat copies without reading, and reads the others.
func TestScanKeepsCanonicalTokens(t *testing.T) {
	sc := &repeatScan{}
	require.True(t, sc.scan([]byte("a 0.25\nb{x=\"y\"} 1.5e-05\nc 0.1234567890123456\nd 1.50\ne 181234.56\nf 7\n"+
		"g 14.0\nh -3.0\ni 0.0\nj -0.0\nk 1234567.0\nl 00.0\nm 1.0e+06\n")))
	var kept []string
	for _, tok := range sc.texts {
		kept = append(kept, string(tok))
	}
	require.Equal(t, []string{"0.25", "1.5e-05", "", "", "181234.56", "7", "", "", "", "", "", "", ""}, kept)
	require.Equal(t, []float64{0, 0, 0.1234567890123456, 1.5, 0, 0, 14, -3, 0, math.Copysign(0, -1), 1234567, 0, 1e6}, sc.values,
		"only the tokens not kept are read")
}
