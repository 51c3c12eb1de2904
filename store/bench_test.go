package store

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/cputime"
)

// benchFamilies describes the group a KubeEdge edge node pushes in the
// benchmarks: 8 families × 5 series = 40 series, each labelled with job,
// instance, node, region and one label of its own.
var benchFamilies = []struct {
	name, label string
	typ         dto.MetricType
	values      []string
}{
	{"node_cpu_seconds_total", "cpu", dto.MetricType_COUNTER, []string{"0", "1", "2", "3", "4"}},
	{"node_memory_bytes", "kind", dto.MetricType_GAUGE, []string{"total", "free", "available", "cached", "buffers"}},
	{"node_network_receive_bytes_total", "device", dto.MetricType_COUNTER, []string{"eth0", "eth1", "lo", "docker0", "cni0"}},
	{"node_network_transmit_bytes_total", "device", dto.MetricType_COUNTER, []string{"eth0", "eth1", "lo", "docker0", "cni0"}},
	{"node_filesystem_avail_bytes", "mountpoint", dto.MetricType_GAUGE, []string{"/", "/var", "/data", "/boot", "/tmp"}},
	{"edgecore_pods_running", "namespace", dto.MetricType_GAUGE, []string{"default", "kube-system", "edge", "monitoring", "apps"}},
	{"edgecore_sync_errors_total", "resource", dto.MetricType_COUNTER, []string{"pods", "configmaps", "secrets", "services", "nodes"}},
	{"node_load", "window", dto.MetricType_GAUGE, []string{"1m", "5m", "15m", "30m", "60m"}},
}

// benchPush returns the sanitised PUT of edge node i.
func benchPush(i int, at time.Time) Push {
	node := fmt.Sprintf("edge-node-%05d", i)
	k := NewGroupKey(map[string]string{"job": "edgecore", "instance": node})
	fams := make(map[string]*dto.MetricFamily, len(benchFamilies))
	for fi, bf := range benchFamilies {
		mf := &dto.MetricFamily{Name: proto.String(bf.name), Help: proto.String("Help of " + bf.name + "."), Type: bf.typ.Enum()}
		for vi, v := range bf.values {
			m := &dto.Metric{Label: []*dto.LabelPair{
				{Name: proto.String(bf.label), Value: proto.String(v)},
				{Name: proto.String("instance"), Value: proto.String(node)},
				{Name: proto.String("job"), Value: proto.String("edgecore")},
				{Name: proto.String("node"), Value: proto.String(node)},
				{Name: proto.String("region"), Value: proto.String("eu-west-1")},
			}}
			sortBenchLabels(m.Label)
			value := float64(i*1000+fi*10+vi) * 1234.5678
			if bf.typ == dto.MetricType_COUNTER {
				m.Counter = &dto.Counter{Value: proto.Float64(value)}
			} else {
				m.Gauge = &dto.Gauge{Value: proto.Float64(value)}
			}
			mf.Metric = append(mf.Metric, m)
		}
		fams[bf.name] = mf
	}
	return Push{Key: k, Replace: true, Families: fams, Time: at}
}

func sortBenchLabels(ls []*dto.LabelPair) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].GetName() < ls[j-1].GetName(); j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// benchTextSize is the size of a push in the text format, for b.SetBytes.
func benchTextSize(b *testing.B, p Push) int64 {
	var n int64
	for _, mf := range p.Families {
		w, err := expfmt.MetricFamilyToText(io.Discard, mf)
		if err != nil {
			b.Fatal(err)
		}
		n += int64(w)
	}
	return n
}

var benchT = time.Unix(1_700_000_000, 0)

func newBenchStore(b *testing.B, groups int) *Store {
	return newBenchStoreConfig(b, Config{}, groups)
}

func newBenchStoreConfig(b *testing.B, cfg Config, groups int) *Store {
	s, err := New(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Unix(1_700_000_000, 0)
	for i := range groups {
		if err := s.Apply(benchPush(i, at)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkApply is a 40-series PUT replacing a group in a store of 1000
// groups: validation, rendering, hashing and the check and commit.
func BenchmarkApply(b *testing.B) {
	const groups = 1000
	s := newBenchStore(b, groups)
	pushes := make([]Push, groups)
	for i := range pushes {
		pushes[i] = benchPush(i, time.Unix(1_700_000_100, 0))
	}
	b.SetBytes(benchTextSize(b, pushes[0]))
	b.ReportAllocs()
	cpu := cputime.Start()
	i := 0
	for b.Loop() {
		p := pushes[i%groups]
		p.Time = p.Time.Add(time.Duration(i))
		if err := s.Apply(p); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu.Report(b, i)
}

// BenchmarkApplyRefusedAtGroupLimit is a 40-series push for a new group
// into a store already at --store.max-groups (1000): what each push of a
// cardinality attack costs the peer.
func BenchmarkApplyRefusedAtGroupLimit(b *testing.B) {
	const groups = 1000
	s, err := New(Config{MaxGroups: groups}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Unix(1_700_000_000, 0)
	for i := range groups {
		if err := s.Apply(benchPush(i, at)); err != nil {
			b.Fatal(err)
		}
	}
	attack := benchPush(groups, at) // a group the store does not have
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Apply(attack); !errors.Is(err, ErrLimit) {
			b.Fatalf("want ErrLimit, got %v", err)
		}
	}
}

// BenchmarkApplyParallel is BenchmarkApply from GOMAXPROCS goroutines: the
// work outside the lock runs in parallel.
func BenchmarkApplyParallel(b *testing.B) {
	const groups = 1000
	s := newBenchStore(b, groups)
	pushes := make([]Push, groups)
	for i := range pushes {
		pushes[i] = benchPush(i, time.Unix(1_700_000_100, 0))
	}
	b.SetBytes(benchTextSize(b, pushes[0]))
	b.ReportAllocs()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if err := s.Apply(pushes[i%groups]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRender builds (validates, sorts, renders, hashes) the families
// of one 40-series push, the work Apply does outside the lock.
func BenchmarkRender(b *testing.B) {
	p := benchPush(42, time.Unix(1_700_000_000, 0))
	bl := newBuilder()
	b.SetBytes(benchTextSize(b, p))
	b.ReportAllocs()
	cpu := cputime.Start()
	n := 0
	for b.Loop() {
		for _, mf := range p.Families {
			if out := bl.build(mf, p.Time); len(out.errs) > 0 {
				b.Fatal(out.errs)
			}
		}
		n++
	}
	cpu.Report(b, n)
}

// BenchmarkRenderBaseline is what expfmt.MetricFamilyToText alone costs
// for the same push: a yardstick for BenchmarkRender, which also validates
// and hashes, on whatever machine runs them.
func BenchmarkRenderBaseline(b *testing.B) {
	p := benchPush(42, time.Unix(1_700_000_000, 0))
	var buf bytes.Buffer
	b.SetBytes(benchTextSize(b, p))
	b.ReportAllocs()
	cpu := cputime.Start()
	n := 0
	defer func() { cpu.Report(b, n) }()
	for b.Loop() {
		n++
		for _, mf := range p.Families {
			buf.Reset()
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkScrape writes a store of 1000 groups × 40 series (plus the two
// push-time gauges each) with 10 own families merged in. Every format is
// scraped once before the loop, so the loop measures warm scrapes: the
// protobuf and OpenMetrics renderings are cached and a scrape only
// concatenates (BenchmarkRenderProtobuf is what the first one costs).
func BenchmarkScrape(b *testing.B) {
	s := newBenchStore(b, 1000)
	own := benchOwnFamilies()
	// The plain formats write names as pushed (allow-utf-8, what
	// Prometheus 3 asks for in text); underscores is what every scraper
	// that does not ask for UTF-8 names gets.
	under := model.UnderscoreEscaping
	for _, f := range []Format{FormatText, FormatProtoDelim, FormatOpenMetrics,
		FormatText.WithEscaping(under), FormatProtoDelim.WithEscaping(under), FormatOpenMetrics.WithEscaping(under)} {
		b.Run(f.String(), func(b *testing.B) {
			cw := &countingDiscard{}
			if err := s.WriteExposition(cw, f, own); err != nil { // fills the protobuf or OpenMetrics cache
				b.Fatal(err)
			}
			b.SetBytes(cw.n)
			b.ReportAllocs()
			for b.Loop() {
				if err := s.WriteExposition(io.Discard, f, own); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenderProtobuf renders the protobuf bytes of one 40-series
// push from its text lines, as the first protobuf scrape of a pushed group
// does (later ones reuse them).
func BenchmarkRenderProtobuf(b *testing.B) {
	p := benchPush(42, time.Unix(1_700_000_000, 0))
	bl := newBuilder()
	var fams []*family
	for _, mf := range p.Families {
		out := bl.build(mf, p.Time)
		if len(out.errs) > 0 {
			b.Fatal(out.errs)
		}
		fams = append(fams, out.fam)
	}
	b.SetBytes(benchTextSize(b, p))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range fams {
			if _, err := f.protobuf(nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchOwnFamilies() []*dto.MetricFamily {
	var own []*dto.MetricFamily
	for i := range 10 {
		own = append(own, &dto.MetricFamily{
			Name: proto.String("go_bench_" + strconv.Itoa(i)), Help: proto.String("Own family."), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(float64(i))}}},
		})
	}
	return own
}

type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// BenchmarkHeapPerSeries fills a store with 2500 edge-node groups (100k
// pushed series, 105k stored with the push-time gauges) and reports the
// live heap per stored series, before and after the first OpenMetrics
// scrape (which caches an OpenMetrics rendering per family).
func BenchmarkHeapPerSeries(b *testing.B) {
	const groups = 2500
	var perSeries, perSeriesOM float64
	b.ReportAllocs()
	for b.Loop() {
		before := liveHeap()
		s := newBenchStore(b, groups)
		stored := liveHeap()
		if err := s.WriteExposition(io.Discard, FormatOpenMetrics, nil); err != nil {
			b.Fatal(err)
		}
		withOM := liveHeap()
		_, series := s.Stats()
		perSeries = float64(stored-before) / float64(series)
		perSeriesOM = float64(withOM-before) / float64(series)
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perSeries, "B/series")
	b.ReportMetric(perSeriesOM, "B/series-with-OM")
}

func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkExpire removes one due group per iteration from stores of
// growing size whose other groups all have later deadlines: the cost per
// expired group must not grow with the store (beyond the heap's log n).
// Each iteration also pushes the group it then expires; ns/expired reports
// Expire alone.
func BenchmarkExpire(b *testing.B) {
	for _, groups := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			s, err := New(Config{}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Unix(1_700_000_000, 0)
			for i := range groups {
				if err := s.Apply(expirePush(fmt.Sprintf("stays-%d", i), t0, 24*time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			var inExpire time.Duration
			i := 0
			for b.Loop() {
				at := t0.Add(time.Duration(i) * time.Millisecond)
				if err := s.Apply(expirePush("goes", at, time.Millisecond)); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				n := s.Expire(at.Add(time.Millisecond))
				inExpire += time.Since(start)
				if n != 1 {
					b.Fatalf("expired %d groups, want 1", n)
				}
				i++
			}
			b.ReportMetric(float64(inExpire.Nanoseconds())/float64(i), "ns/expired")
		})
	}
}

// expirePush is a one-series PUT of group job="expire",instance=instance
// with a TTL.
func expirePush(instance string, at time.Time, ttl time.Duration) Push {
	k := NewGroupKey(map[string]string{"job": "expire", "instance": instance})
	mf := &dto.MetricFamily{Name: proto.String("up"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{
		Label: []*dto.LabelPair{
			{Name: proto.String("instance"), Value: proto.String(instance)},
			{Name: proto.String("job"), Value: proto.String("expire")},
		},
		Gauge: &dto.Gauge{Value: proto.Float64(1)},
	}}}
	return Push{Key: k, Replace: true, Families: map[string]*dto.MetricFamily{"up": mf}, Time: at, TTL: ttl}
}

// BenchmarkHeapAtSeriesLimit pushes twice as many edge-node groups as
// Config.MaxSeries admits and reports the live heap once the limit is hit:
// the refused pushes leave nothing behind, so the heap is what the admitted
// series take (compare B/series with BenchmarkHeapPerSeries).
func BenchmarkHeapAtSeriesLimit(b *testing.B) {
	const maxSeries = 50_000 // ~1190 groups of 42 series
	const attempts = 2 * maxSeries / 42
	var heapMB, perSeries float64
	var stored, refused int
	b.ReportAllocs()
	for b.Loop() {
		before := liveHeap()
		s, err := New(Config{MaxSeries: maxSeries}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		refused = 0
		at := time.Unix(1_700_000_000, 0)
		for i := 0; i < attempts; i++ {
			err := s.Apply(benchPush(i, at))
			if errors.Is(err, ErrLimit) {
				refused++
			} else if err != nil {
				b.Fatal(err)
			}
		}
		after := liveHeap()
		_, stored = s.Stats()
		heapMB = float64(after-before) / (1 << 20)
		perSeries = float64(after-before) / float64(stored)
		runtime.KeepAlive(s)
	}
	if stored > maxSeries || refused < attempts/3 {
		b.Fatalf("stored %d series (limit %d), refused %d of %d pushes", stored, maxSeries, refused, attempts)
	}
	b.ReportMetric(heapMB, "heap-MB")
	b.ReportMetric(perSeries, "B/series")
	b.ReportMetric(float64(stored), "series")
	b.ReportMetric(float64(refused), "refused")
}

// BenchmarkScrapeHeap400k scrapes a store of 10,000 edge-node groups
// (420k series) in each format, from a store never scraped before, with
// the render cache unbounded, at 16 MiB (smaller than the renderings) and
// at its default, and reports what a scrape costs in memory: the heap it
// leaves behind (retained-MB: renderings kept on the families), the bytes
// it allocates on the first scrape and on the one after, and how long
// the second takes (-benchtime 1x).
func BenchmarkScrapeHeap400k(b *testing.B) {
	for _, limit := range []int64{0, 16 << 20, DefaultMaxRenderCacheBytes} {
		for _, f := range []Format{FormatText, FormatProtoDelim, FormatOpenMetrics} {
			b.Run(fmt.Sprintf("cache=%dMiB/%s", limit>>20, f), func(b *testing.B) {
				var retained, first, second float64
				var secondTime time.Duration
				for b.Loop() {
					s := newBenchStoreConfig(b, Config{MaxRenderCacheBytes: limit}, 10_000)
					before := liveHeap()
					first = float64(allocatedBy(b, func() error { return s.WriteExposition(io.Discard, f, nil) }))
					retained = float64(liveHeap() - before)
					start := time.Now()
					second = float64(allocatedBy(b, func() error { return s.WriteExposition(io.Discard, f, nil) }))
					secondTime = time.Since(start)
					runtime.KeepAlive(s)
				}
				b.ReportMetric(retained/(1<<20), "retained-MB")
				b.ReportMetric(first/(1<<20), "alloc-MB/first")
				b.ReportMetric(second/(1<<20), "alloc-MB/second")
				b.ReportMetric(secondTime.Seconds()*1000, "ms/second")
			})
		}
	}
}

// allocatedBy returns the bytes of heap fn allocates.
func allocatedBy(b *testing.B, fn func() error) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// BenchmarkScrapeGzip400k times text scrapes of 10,000 groups × 40 series
// (420k lines): plain; gzipped by compress/gzip at BestSpeed over the
// whole stream (what the api did before WriteExpositionGzip); and by
// WriteExpositionGzip the first time (every family compressed and kept)
// and after (the kept segments copied). wire-MB is the answer's size.
func BenchmarkScrapeGzip400k(b *testing.B) {
	s := newBenchStoreConfig(b, Config{MaxRenderCacheBytes: 1 << 30}, 10_000)
	cases := []struct {
		name  string
		write func(w io.Writer) error
		reset bool // drop the kept segments before every scrape
	}{
		{"plain", func(w io.Writer) error { return s.WriteExposition(w, FormatText, nil) }, false},
		{"gzip-stream", func(w io.Writer) error {
			zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
			if err := s.WriteExposition(zw, FormatText, nil); err != nil {
				return err
			}
			return zw.Close()
		}, false},
		{"segments-first", func(w io.Writer) error { return s.WriteExpositionGzip(w, FormatText, nil) }, true},
		{"segments-kept", func(w io.Writer) error { return s.WriteExpositionGzip(w, FormatText, nil) }, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cw := &countingDiscard{}
			if err := c.write(cw); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if c.reset {
					b.StopTimer()
					s.dropGzipSegments()
					b.StartTimer()
				}
				if err := c.write(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cw.n)/(1<<20), "wire-MB")
		})
	}
}

// BenchmarkScrapeGzipOwn is a gzipped text scrape of an empty store with the
// own families of a real peer (27 KB of text, captured after a 40k-series
// scrape run): what every gzipped scrape pays for them, rendered and
// compressed anew because their values change.
func BenchmarkScrapeGzipOwn(b *testing.B) {
	benchScrapeGzip(b, newBenchStore(b, 0), realOwnFamilies(b))
}

// benchScrapeGzip times gzipped text scrapes of s with own, after one
// that keeps the chunks, and reports the answer's size.
func benchScrapeGzip(b *testing.B, s *Store, own []*dto.MetricFamily) {
	cw := &countingDiscard{}
	if err := s.WriteExpositionGzip(cw, FormatText, own); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.WriteExpositionGzip(io.Discard, FormatText, own); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cw.n)/(1<<10), "wire-KB")
}

// realOwnFamilies reads testdata/own-families.txt: a peer's own families,
// sorted by name.
func realOwnFamilies(tb testing.TB) []*dto.MetricFamily {
	f, err := os.Open("testdata/own-families.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(f)
	if err != nil {
		tb.Fatal(err)
	}
	if len(byName) == 0 {
		tb.Fatal("testdata/own-families.txt holds no family")
	}
	own := make([]*dto.MetricFamily, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		own = append(own, byName[name])
	}
	return own
}

// BenchmarkScrapeGzip40k is a warm gzipped text scrape of 1,000 groups × 40
// series: the kept chunks copied.
func BenchmarkScrapeGzip40k(b *testing.B) {
	benchScrapeGzip(b, newBenchStore(b, 1000), benchOwnFamilies())
}
