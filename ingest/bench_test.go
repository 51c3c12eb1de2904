package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/internal/cputime"
	"github.com/pushring/pushring/store"
)

// benchPath is an edge node's push path as client_golang builds it.
const benchPath = "/job/node/instance/edge-node-00042/zone@base64/ZXUtd2VzdC0x"

func benchmarkDecode(b *testing.B, body []byte, contentType, encoding string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		fams, err := DecodeBody(bytes.NewReader(body), contentType, encoding, DefaultMaxBodyBytes)
		if err != nil || len(fams) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeText decodes a 40-series node push (counters, gauges, one
// histogram) in text format.
func BenchmarkDecodeText(b *testing.B) {
	benchmarkDecode(b, readTestdata(b, "node.prom"), "text/plain; version=0.0.4", "")
}

// BenchmarkDecodeTextExpfmt is BenchmarkDecodeText's parse by expfmt's
// TextParser, which the push path used before scanText and still uses for
// what scanText declines: the reference figure.
func BenchmarkDecodeTextExpfmt(b *testing.B) {
	body := readTestdata(b, "node.prom")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		fams, err := decodeText(bytes.NewReader(body), false)
		if err != nil || len(fams) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTextGzip is BenchmarkDecodeText with a gzipped body;
// SetBytes counts the compressed size.
func BenchmarkDecodeTextGzip(b *testing.B) {
	benchmarkDecode(b, gzipBytes(b, readTestdata(b, "node.prom")), "text/plain; version=0.0.4", "gzip")
}

// BenchmarkDecodeProto decodes the same push as client_golang sends it.
func BenchmarkDecodeProto(b *testing.B) {
	node := parseText(b, string(readTestdata(b, "node.prom")))
	benchmarkDecode(b, encodeDelimited(b, sortedFamilies(node)...), string(fmtProtoDelim), "")
}

// BenchmarkDecodePooled is the ingest package's share of a push without
// the store: the node push decoded in place by a pooled parser, as from a
// Body, sanitised, and released. cpu-ns/op includes the collector's work
// on its garbage.
func BenchmarkDecodePooled(b *testing.B) {
	text := readTestdata(b, "node.prom")
	key, err := ParseGroupingPath(benchPath)
	if err != nil {
		b.Fatal(err)
	}
	ls := key.Labels()
	for _, f := range nodeBodies(b, text) {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(f.body)))
			cpu := cputime.Start()
			n := 0
			for b.Loop() {
				fams, release, err := decodeBytes(f.body, f.contentType, false, true, true)
				if err != nil || len(fams) == 0 {
					b.Fatal(err)
				}
				sanitize(fams, ls)
				release()
				n++
			}
			cpu.Report(b, n)
		})
	}
}

// BenchmarkParseGroupingPath parses a path into a key and its hash.
func BenchmarkParseGroupingPath(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPath)))
	var sink uint64
	for b.Loop() {
		k, err := ParseGroupingPath(benchPath)
		if err != nil {
			b.Fatal(err)
		}
		sink ^= k.Hash()
	}
	_ = sink
}

// BenchmarkSanitize sanitises the node push under a two-label key. The
// body carries no grouping label, so Sanitize only adds label pairs, in new
// slices; restoring each metric's original slice (a pointer write per
// metric, on the clock) gives every iteration the same fresh input.
func BenchmarkSanitize(b *testing.B) {
	node := parseText(b, string(readTestdata(b, "node.prom")))
	key, err := ParseGroupingPath(benchPath)
	if err != nil {
		b.Fatal(err)
	}
	var metrics []*dto.Metric
	var labels [][]*dto.LabelPair
	for _, mf := range node {
		for _, m := range mf.GetMetric() {
			metrics = append(metrics, m)
			labels = append(labels, m.Label)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, m := range metrics {
			m.Label = labels[i]
		}
		Sanitize(node, key)
	}
	if got := len(metrics[0].GetLabel()); got != len(labels[0])+3 {
		b.Fatalf("sanitised metric has %d labels, want %d", got, len(labels[0])+3)
	}
}

// nopStore accepts every push.
type nopStore struct{}

func (nopStore) Apply(store.Push) error     { return nil }
func (nopStore) Delete(store.GroupKey) bool { return false }

// BenchmarkHandle is one protobuf push through the ingester to a store that
// does nothing: path, decode, sanitise, limits, TTL and the self-metrics.
// "limits=off" disables every limit on a push; the difference between the
// two is the cost of the limit checks.
func BenchmarkHandle(b *testing.B) {
	node := parseText(b, string(readTestdata(b, "node.prom")))
	body := encodeDelimited(b, sortedFamilies(node)...)
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"limits=off", Config{MaxBodyBytes: DefaultMaxBodyBytes}},
		{"limits=default", DefaultConfig()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in, err := New(bc.cfg, nopStore{}, nil, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, err := in.Handle(context.Background(), Request{
					Method: http.MethodPut, Path: benchPath, ContentType: string(fmtProtoDelim), Body: bytes.NewReader(body),
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckLimits is the limit checks alone, with the defaults, on the
// sanitised node push and its key.
func BenchmarkCheckLimits(b *testing.B) {
	node := parseText(b, string(readTestdata(b, "node.prom")))
	key, err := ParseGroupingPath(benchPath)
	if err != nil {
		b.Fatal(err)
	}
	ls := key.Labels()
	sanitize(node, ls)
	l := limitsOf(DefaultConfig())
	b.ReportAllocs()
	for b.Loop() {
		if err := l.checkKey(ls); err != nil {
			b.Fatal(err)
		}
		if err := l.check(node); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTTLFor resolves the TTL of a push without a header against a
// rules file of ten rules, the last of which matches.
func BenchmarkTTLFor(b *testing.B) {
	var rules strings.Builder
	rules.WriteString("rules:\n")
	for i := range 9 {
		fmt.Fprintf(&rules, "  - job: \"batch-%d-.*\"\n    labels:\n      instance: \"edge-.*\"\n    ttl: 1m\n", i)
	}
	rules.WriteString("  - job: node\n    labels:\n      zone: \"eu-.*\"\n    ttl: 2m\n")
	file := filepath.Join(b.TempDir(), "ttl.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	in, err := New(Config{TTLRulesFile: file}, nopStore{}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	key, err := ParseGroupingPath(benchPath)
	if err != nil {
		b.Fatal(err)
	}
	ls := key.Labels()
	b.ReportAllocs()
	for b.Loop() {
		if d, err := in.ttlFor(ls, nil); err != nil || d != 2*time.Minute {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkDecodeCost measures the heap that decoded families hold per
// byte of the text body they came from, the figure behind the api's
// decodeCost charge: small series with short labels, and the 16 MB push of
// issue 11 (series with 300-byte label values).
func BenchmarkDecodeCost(b *testing.B) {
	for _, tt := range []struct {
		name   string
		series int
		value  int // label value length
	}{{"short labels", 40000, 8}, {"300-byte labels", 49000, 300}} {
		b.Run(tt.name, func(b *testing.B) {
			var sb strings.Builder
			sb.WriteString("# TYPE cost gauge\n")
			v := strings.Repeat("v", tt.value)
			for i := range tt.series {
				fmt.Fprintf(&sb, "cost{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
			}
			text := []byte(sb.String())
			for _, f := range []struct {
				name, contentType string
				body              []byte
			}{{"text", "", text}, {"proto", string(fmtProtoDelim), encodeDelimited(b, sortedFamilies(parseText(b, sb.String()))...)}} {
				b.Run(f.name, func(b *testing.B) { benchmarkDecodeCost(b, f.body, f.contentType) })
			}
		})
	}
}

func benchmarkDecodeCost(b *testing.B, body []byte, contentType string) {
	var perByte float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fams, err := DecodeBody(bytes.NewReader(body), contentType, "", 0)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perByte = float64(after.HeapAlloc-before.HeapAlloc) / float64(len(body))
		runtime.KeepAlive(fams)
	}
	b.ReportMetric(perByte, "heap-bytes/body-byte")
	b.ReportMetric(float64(len(body)), "body-bytes")
}

// BenchmarkPush is the push path below HTTP: the node push (40 series),
// read ahead into a Body as the api does, handled by the ingester and
// applied to a real store of 1,000 groups, PUT to each group in turn, in
// text and as client_golang's protobuf, the values changing from one push
// to the next (four versions of the body); and, in text, the bodies of
// prom-client (its default metrics and four of a program's) and the
// Python client (a batch job's), whose labels, series or bounds are not
// written as the store writes them, nor the Python client's values
// ("14.0"); and the node push in text with
// decimals (n+0.25) where it has whole numbers, but for its counts, as an
// exporter writes seconds and ratios. "repeated" is the store as it runs, which
// repeats these pushes (repeat.go); "full" hides that from the ingester,
// so every push is parsed, checked and rendered. cpu-ns/op includes the
// collector's work on the push's garbage.
func BenchmarkPush(b *testing.B) {
	// Whole numbers, as each client writes them.
	bodyVersions := func(text string, format func(int) string) [4]string {
		var versions [4]string
		for v := range versions {
			n := 0
			versions[v] = withValues(text, func() string { n++; return format(n*7 + v) })
		}
		return versions
	}
	node := bodyVersions(string(readTestdata(b, "node.prom")), strconv.Itoa)
	clients := []struct {
		name, file string
		format     func(int) string
	}{
		{"prom-client", "clients/prom-client-15.1.3.prom", strconv.Itoa},
		{"python", "clients/python-0.16.prom", func(n int) string { return pythonFloat(float64(n)) }},
	}
	for _, mode := range []string{"repeated", "full"} {
		for k, f := range nodeBodies(b, []byte(node[0])) {
			bodies := [][]byte{f.body}
			for _, v := range node[1:] {
				bodies = append(bodies, nodeBodies(b, []byte(v))[k].body)
			}
			b.Run(mode+"/"+f.name, func(b *testing.B) { benchPushes(b, mode, f.contentType, bodies) })
		}
		for _, c := range clients {
			var bodies [][]byte
			for _, v := range bodyVersions(string(readTestdata(b, c.file)), c.format) {
				bodies = append(bodies, []byte(v))
			}
			b.Run(mode+"/"+c.name, func(b *testing.B) { benchPushes(b, mode, "text/plain; version=0.0.4; charset=utf-8", bodies) })
		}
		var decimals [][]byte
		for _, v := range node {
			decimals = append(decimals, withDecimals(v))
		}
		b.Run(mode+"/text-decimals", func(b *testing.B) { benchPushes(b, mode, "text/plain; version=0.0.4; charset=utf-8", decimals) })
	}
}

// withDecimals returns text with the value of each sample line but the
// counts (_bucket, _count) plus 0.25: a decimal written as the store
// writes it.
func withDecimals(text string) []byte {
	return []byte(withLineValues(text, func(series, value string) string {
		if isCountSeries(series) {
			return value
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			panic(err)
		}
		return strconv.FormatFloat(v+0.25, 'g', -1, 64)
	}))
}

// benchPushes is BenchmarkPush's loop: bodies in turn to 1,000 groups.
func benchPushes(b *testing.B, mode, contentType string, bodies [][]byte) {
	st, err := store.New(store.Config{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	var to Store = st
	if mode == "full" {
		to = fullWayStore{st}
	}
	in, err := New(DefaultConfig(), to, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	const groups = 1000
	paths := make([]string, groups)
	for i := range paths {
		paths[i] = fmt.Sprintf("/job/node/instance/edge-node-%05d", i)
	}
	push := func(i int) {
		raw := bodies[(i/groups)%len(bodies)]
		body, err := ReadBody(bytes.NewReader(raw), "", 0, int64(len(raw)), func(int64) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if _, err := in.Handle(context.Background(), Request{
			Method: http.MethodPut, Path: paths[i%groups], ContentType: contentType, Body: body,
		}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 2 * groups {
		push(i)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(bodies[0])))
	cpu := cputime.Start()
	i := 2 * groups
	for b.Loop() {
		push(i)
		i++
	}
	cpu.Report(b, i-2*groups)
}

// benchBody is a push body of a benchmark, with its Content-Type.
type benchBody struct {
	name, contentType string
	body              []byte
}

// nodeBodies returns the node push text in text and as client_golang's
// protobuf.
func nodeBodies(b *testing.B, text []byte) []benchBody {
	return []benchBody{
		{"text", "text/plain; version=0.0.4; charset=utf-8", text},
		{"protobuf", protoContentType, encodeDelimited(b, sortedFamilies(parseText(b, string(text)))...)},
	}
}

// BenchmarkDecodeCostSpeed is the time DecodeCost takes for the node push,
// which the api spends on every push before admitting it; a protobuf
// body once without a template and once with one (repeattemplate.go).
func BenchmarkDecodeCostSpeed(b *testing.B) {
	for _, f := range nodeBodies(b, readTestdata(b, "node.prom")) {
		for _, templated := range []bool{false, true} {
			if templated && f.contentType != protoContentType {
				continue
			}
			name := f.name
			if templated {
				name += "/templated"
			}
			b.Run(name, func(b *testing.B) {
				slot := &templates[len(f.body)%protoTemplateCount]
				slot.Store(nil)
				if templated {
					sc := &repeatScan{}
					if !sc.scanProto(f.body, false) {
						b.Fatal("the body does not scan")
					}
					templates.keep(sc)
				}
				defer slot.Store(nil)
				b.SetBytes(int64(len(f.body)))
				for b.Loop() {
					if decodeCost(f.body, f.contentType) <= 0 {
						b.Fatal("no cost")
					}
				}
			})
		}
	}
}
