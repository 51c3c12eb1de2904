package store

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/cputime"
)

// Families as a pusher sends them, without grouping labels. Every metric type,
// with and without HELP.
func pushedFamilies() []*dto.MetricFamily {
	return []*dto.MetricFamily{
		{
			Name: proto.String("jobs_processed_total"), Help: proto.String("Jobs processed."),
			Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{
				{Label: labelPairsOf("queue", "a"), Counter: &dto.Counter{Value: proto.Float64(42)}},
				{Label: labelPairsOf("queue", "b"), Counter: &dto.Counter{Value: proto.Float64(7)}},
			},
		},
		{
			Name: proto.String("temperature_celsius"), Help: proto.String("Temperature."),
			Type:   dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(-21.5)}}},
		},
		{
			Name:   proto.String("untyped_thing"), // no HELP
			Type:   dto.MetricType_UNTYPED.Enum(),
			Metric: []*dto.Metric{{Untyped: &dto.Untyped{Value: proto.Float64(3)}}},
		},
		{
			Name: proto.String("rpc_duration_seconds"), Help: proto.String("RPC latency."),
			Type: dto.MetricType_SUMMARY.Enum(),
			Metric: []*dto.Metric{{Summary: &dto.Summary{
				SampleCount: proto.Uint64(10), SampleSum: proto.Float64(5.25),
				Quantile: []*dto.Quantile{
					{Quantile: proto.Float64(0.5), Value: proto.Float64(0.2)},
					{Quantile: proto.Float64(0.99), Value: proto.Float64(0.8)},
				},
			}}},
		},
		{
			Name: proto.String("request_size_bytes"), Help: proto.String("Request sizes."),
			Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Label: labelPairsOf("path", "/x"), Histogram: &dto.Histogram{
				SampleCount: proto.Uint64(4), SampleSum: proto.Float64(2500.5),
				Bucket: []*dto.Bucket{
					{UpperBound: proto.Float64(100), CumulativeCount: proto.Uint64(1)},
					{UpperBound: proto.Float64(1000), CumulativeCount: proto.Uint64(3)},
					{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(4)},
				},
			}}},
		},
	}
}

func labelPairsOf(kv ...string) []*dto.LabelPair {
	var ls []*dto.LabelPair
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, &dto.LabelPair{Name: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return ls
}

// withGroupingLabels returns a copy of mf as a gateway stores it: every
// grouping label set on every metric, instance="" where missing, labels
// sorted.
func withGroupingLabels(mf *dto.MetricFamily, grouping map[string]string) *dto.MetricFamily {
	mf = proto.Clone(mf).(*dto.MetricFamily)
	for _, m := range mf.Metric {
		ls := map[string]string{"instance": ""}
		for _, l := range m.Label {
			ls[l.GetName()] = l.GetValue()
		}
		for n, v := range grouping {
			ls[n] = v
		}
		m.Label = nil
		for _, n := range sortedMapKeys(ls) {
			m.Label = append(m.Label, labelPairsOf(n, ls[n])...)
		}
	}
	return mf
}

func sortedMapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// pushTimeGauge builds push_time_seconds or push_failure_time_seconds as the
// gateway keeps them; a zero t gives the value 0.
func pushTimeGauge(name string, grouping map[string]string, t time.Time) *dto.MetricFamily {
	v := 0.0
	if !t.IsZero() {
		v = float64(t.UnixNano()) / 1e9
	}
	return withGroupingLabels(&dto.MetricFamily{
		Name: proto.String(name), Help: proto.String("Last Unix time when changing this group failed or succeeded."),
		Type:   dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(v)}}},
	}, grouping)
}

// storedGroup builds a group as the store holds it: the pushed families
// written at pushed, and the two push-time gauges.
func storedGroup(grouping map[string]string, pushed, failed time.Time, version uint64) GroupSnapshot {
	g := GroupSnapshot{Key: NewGroupKey(grouping), Version: version}
	for _, mf := range pushedFamilies() {
		g.Families = append(g.Families, FamilySnapshot{Family: withGroupingLabels(mf, grouping), Time: pushed})
	}
	failTime := pushed
	if !failed.IsZero() {
		failTime = failed
	}
	g.Families = append(g.Families,
		FamilySnapshot{Family: pushTimeGauge(PushTimeName, grouping, pushed), Time: pushed},
		FamilySnapshot{Family: pushTimeGauge(PushFailureTimeName, grouping, failed), Time: failTime},
	)
	sortFamilySnapshots(g.Families)
	return g
}

// testGroups covers grouping keys with a '/' in a value, an empty value and
// non-ASCII, versions zero and not, deadlines set (to the nanosecond, in
// another zone) and not, per-family times and a failed push.
func testGroups() []GroupSnapshot {
	t0 := time.Date(2026, 11, 22, 1, 2, 3, 456789012, time.UTC)
	failedGroup := storedGroup(map[string]string{"job": "failing", "instance": "i1"}, t0, t0.Add(time.Minute), 9)
	// A later POST rewrote one family only: it keeps its own time.
	failedGroup.Families[0].Time = t0.Add(30 * time.Second)
	failedGroup.Deadline = t0.Add(5 * time.Minute)
	paths := storedGroup(map[string]string{"job": "paths", "dir": "/var/tmp", "empty": ""}, t0.Add(time.Second), time.Time{}, 1<<40)
	paths.Deadline = t0.Add(time.Second + 90*time.Second).In(time.FixedZone("Y", -7200))
	return []GroupSnapshot{
		storedGroup(map[string]string{"job": "batch"}, t0, time.Time{}, 0),
		paths,
		storedGroup(map[string]string{"job": "ünïcode", "zone": "eu/west"}, t0.In(time.FixedZone("X", 3600)), time.Time{}, 3),
		failedGroup,
	}
}

// requireSameGroups compares snapshots: keys, versions, and every family by
// protobuf equality and time instant.
func requireSameSnapshots(t *testing.T, want, got []GroupSnapshot) {
	t.Helper()
	sortSnapshotsByKey(want)
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, w.Key, g.Key)
		require.Equal(t, w.Version, g.Version, "version of %q", w.Key)
		require.True(t, w.Deadline.Equal(g.Deadline), "deadline of %q: want %v, got %v", w.Key, w.Deadline, g.Deadline)
		require.Len(t, g.Families, len(w.Families), "families of %q", w.Key)
		for j := range w.Families {
			wf, gf := w.Families[j], g.Families[j]
			require.True(t, proto.Equal(wf.Family, gf.Family), "family %d of %q:\nwant %v\ngot  %v", j, w.Key, wf.Family, gf.Family)
			require.True(t, wf.Time.Equal(gf.Time), "time of %s in %q: want %v, got %v", wf.Family.GetName(), w.Key, wf.Time, gf.Time)
		}
	}
}

func sortSnapshotsByKey(gs []GroupSnapshot) {
	sort.Slice(gs, func(i, j int) bool { return gs[i].Key.Less(gs[j].Key) })
}

func TestPersistRoundTrip(t *testing.T) {
	cases := map[string][]GroupSnapshot{
		"no groups":  {},
		"all groups": testGroups(),
		"group without families": {{
			Key: NewGroupKey(map[string]string{"job": "bare"}), Version: 5,
		}},
	}
	for name, groups := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pushring.data")
			require.NoError(t, WriteFile(path, groups))
			got, err := ReadFile(path)
			require.NoError(t, err)
			requireSameSnapshots(t, groups, got)

			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			requireNoTempFiles(t, filepath.Dir(path))
		})
	}
}

func TestPersistHelpSetAndUnsetSurvive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	g := GroupSnapshot{Key: NewGroupKey(map[string]string{"job": "h"}), Families: []FamilySnapshot{
		{Family: &dto.MetricFamily{Name: proto.String("a_empty_help"), Help: proto.String(""), Type: dto.MetricType_GAUGE.Enum()}},
		{Family: &dto.MetricFamily{Name: proto.String("b_help"), Help: proto.String("b"), Type: dto.MetricType_GAUGE.Enum()}},
		{Family: &dto.MetricFamily{Name: proto.String("c_no_help"), Type: dto.MetricType_GAUGE.Enum()}},
	}}
	require.NoError(t, WriteFile(path, []GroupSnapshot{g}))
	got, err := ReadFile(path)
	require.NoError(t, err)
	require.Len(t, got, 1)
	fams := got[0].Families
	require.NotNil(t, fams[0].Family.Help, "an empty HELP stays set")
	require.Equal(t, "b", fams[1].Family.GetHelp())
	require.Nil(t, fams[2].Family.Help, "a missing HELP stays missing")
}

func TestPersistWriteReplacesOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	groups := testGroups()
	require.NoError(t, WriteFile(path, groups))
	require.NoError(t, WriteFile(path, groups[:1]))
	got, err := ReadFile(path)
	require.NoError(t, err)
	requireSameSnapshots(t, groups[:1], got)
	requireNoTempFiles(t, filepath.Dir(path))
}

func TestReadFileMissing(t *testing.T) {
	got, err := ReadFile(filepath.Join(t.TempDir(), "absent"))
	require.NoError(t, err)
	require.Nil(t, got)
}

func TestReadFileNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadFile(dir)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrCorrupt, "a directory is not a corrupt file and must not be moved aside")
}

func TestReadFileCorrupt(t *testing.T) {
	valid := encodedTestGroups(t)
	cases := map[string][]byte{
		"empty":               {},
		"truncated by half":   valid[:len(valid)/2],
		"truncated by 1":      valid[:len(valid)-1],
		"garbage":             []byte("this is not a gob stream at all, just text\n"),
		"gob of another type": gobEncoded(t, map[uint64]string{1: "v0.x used fingerprints"}),
		"family not protobuf": gobEncoded(t, map[string]rawFileGroup{
			"job\xffx": {Metrics: map[string]rawFileFamily{"m": {GobbableMetricFamily: []byte{0xff, 0xff, 0xff}}}},
		}),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			require.NoError(t, os.WriteFile(path, data, 0o600))
			got, err := ReadFile(path)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, path)
			require.Nil(t, got)
		})
	}
}

// rawFileGroup and rawFileFamily mirror the file types with the family as
// plain bytes, so a test can write families that are not valid protobuf.
type rawFileGroup struct {
	Labels  map[string]string
	Metrics map[string]rawFileFamily
}

type rawFileFamily struct {
	Timestamp            time.Time
	GobbableMetricFamily rawGob
}

type rawGob []byte

func (r rawGob) GobEncode() ([]byte, error) { return r, nil }

func encodedTestGroups(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, WriteFile(path, testGroups()))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

func gobEncoded(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, gob.NewEncoder(&buf).Encode(v))
	return buf.Bytes()
}

func TestReadFileSkipsInvalidGroups(t *testing.T) {
	good := testGroups()[0]
	goodFile, err := groupToFile(good)
	require.NoError(t, err)
	gauge := &protoFamily{mf: &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum()}}
	raw := map[string]fileGroup{
		good.Key.String():    goodFile,
		"job":                {Metrics: map[string]fileFamily{}},
		"job\xffb\xffa\xff1": {Metrics: map[string]fileFamily{}}, // names not sorted
		"job\xffnil_family":  {Metrics: map[string]fileFamily{"g": {}}},
		"job\xffmisnamed":    {Metrics: map[string]fileFamily{"other": {GobbableMetricFamily: gauge}}},
	}
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, gobEncoded(t, raw), 0o600))

	got, err := ReadFile(path)
	require.ErrorIs(t, err, ErrInvalidGroup)
	require.NotErrorIs(t, err, ErrCorrupt)
	require.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 4)
	requireSameSnapshots(t, []GroupSnapshot{good}, got)
}

func TestReadFileKeyWinsOverLabels(t *testing.T) {
	g := testGroups()[0]
	fg, err := groupToFile(g)
	require.NoError(t, err)
	fg.Labels = map[string]string{"job": "something else", "extra": "x"}
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, gobEncoded(t, map[string]fileGroup{g.Key.String(): fg}), 0o600))

	got, err := ReadFile(path)
	require.NoError(t, err)
	requireSameSnapshots(t, []GroupSnapshot{g}, got)
}

func TestWriteFileRejectsInvalidGroups(t *testing.T) {
	g := testGroups()[0]
	dupFamily := g
	dupFamily.Families = append([]FamilySnapshot{g.Families[0]}, g.Families...)
	cases := map[string][]GroupSnapshot{
		"zero key":         {{}},
		"duplicate key":    {g, g},
		"nil family":       {{Key: g.Key, Families: []FamilySnapshot{{}}}},
		"unnamed family":   {{Key: g.Key, Families: []FamilySnapshot{{Family: &dto.MetricFamily{}}}}},
		"duplicate family": {dupFamily},
	}
	for name, groups := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
			require.ErrorIs(t, WriteFile(path, groups), ErrInvalidGroup)
			requireFileContent(t, path, "old")
			requireNoTempFiles(t, dir)
		})
	}
}

func TestWriteFileFailureLeavesOldState(t *testing.T) {
	t.Run("rename onto a directory", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		require.NoError(t, os.Mkdir(path, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(path, "inside"), []byte("kept"), 0o600))

		require.Error(t, WriteFile(path, testGroups()))
		requireFileContent(t, filepath.Join(path, "inside"), "kept")
		requireNoTempFiles(t, dir)
	})
	t.Run("directory missing", func(t *testing.T) {
		dir := t.TempDir()
		require.Error(t, WriteFile(filepath.Join(dir, "absent", "f"), testGroups()))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries)
	})
	t.Run("encode fails", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
		// time.Time cannot gob-encode a zone offset this large, so encoding
		// fails after the temporary file was created.
		bad := testGroups()
		bad[1].Families[0].Time = bad[1].Families[0].Time.In(time.FixedZone("bad", 40000*60))

		require.Error(t, WriteFile(path, bad))
		requireFileContent(t, path, "old")
		requireNoTempFiles(t, dir)
	})
}

func requireFileContent(t *testing.T, path, want string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, string(data))
}

func requireNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotContains(t, e.Name(), ".in_progress.", "temporary file left behind")
	}
}

// sampleMap flattens a family into its exposition samples, keyed by sample
// name and sorted labels, so families can be compared independently of
// metric order and representation.
func familySamples(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	name := mf.GetName()
	for _, m := range mf.Metric {
		ls := map[string]string{}
		for _, l := range m.Label {
			ls[l.GetName()] = l.GetValue()
		}
		add := func(suffix string, v float64, extra ...string) {
			out[familySampleKey(name+suffix, ls, extra...)] = v
		}
		switch {
		case m.Counter != nil:
			add("", m.Counter.GetValue())
		case m.Gauge != nil:
			add("", m.Gauge.GetValue())
		case m.Untyped != nil:
			add("", m.Untyped.GetValue())
		case m.Summary != nil:
			for _, q := range m.Summary.Quantile {
				add("", q.GetValue(), "quantile", formatSampleFloat(q.GetQuantile()))
			}
			add("_sum", m.Summary.GetSampleSum())
			add("_count", float64(m.Summary.GetSampleCount()))
		case m.Histogram != nil:
			for _, b := range m.Histogram.Bucket {
				add("_bucket", float64(b.GetCumulativeCount()), "le", formatSampleFloat(b.GetUpperBound()))
			}
			add("_sum", m.Histogram.GetSampleSum())
			add("_count", float64(m.Histogram.GetSampleCount()))
		}
	}
	return out
}

func familySampleKey(name string, ls map[string]string, extra ...string) string {
	all := map[string]string{}
	for n, v := range ls {
		all[n] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		all[extra[i]] = extra[i+1]
	}
	var b strings.Builder
	b.WriteString(name)
	for _, n := range sortedMapKeys(all) {
		fmt.Fprintf(&b, "|%s=%q", n, all[n])
	}
	return b.String()
}

func formatSampleFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// benchGroups is a store of n groups of every metric type (10 series each).
func benchGroups(n int) []GroupSnapshot {
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	gs := make([]GroupSnapshot, n)
	for i := range gs {
		gs[i] = storedGroup(map[string]string{"job": "bench", "instance": strconv.Itoa(i)}, at, time.Time{}, uint64(i))
	}
	return gs
}

// BenchmarkWriteFile writes 1,000 groups; BenchmarkWriteFile200k the
// 200k groups of a full default peer (-benchtime 1x: it takes seconds).
func BenchmarkWriteFile(b *testing.B) { benchmarkWriteFile(b, 1000) }

func BenchmarkWriteFile200k(b *testing.B) { benchmarkWriteFile(b, 200_000) }

func benchmarkWriteFile(b *testing.B, n int) {
	groups := benchGroups(n)
	path := filepath.Join(b.TempDir(), "f")
	require.NoError(b, WriteFile(path, groups))
	fi, err := os.Stat(path)
	require.NoError(b, err)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	cpu := cputime.Start()
	for b.Loop() {
		if err := WriteFile(path, groups); err != nil {
			b.Fatal(err)
		}
	}
	cpu.PerOp(b)
}

// BenchmarkStoreWriteFile200k writes the file of a store holding the 200k
// groups of BenchmarkWriteFile200k, as the persister does: from the store,
// one group at a time (-benchtime 1x is enough).
func BenchmarkStoreWriteFile200k(b *testing.B) {
	st, path := writtenStore200k(b)
	cpu := cputime.Start()
	for b.Loop() {
		if err := st.WriteFile(path); err != nil {
			b.Fatal(err)
		}
	}
	cpu.PerOp(b)
}

// BenchmarkStoreWriteFile200kSpaced is BenchmarkStoreWriteFile200k with
// the peer idle for 5 s before each write, as between the writes of a
// persister (--persistence.interval, 5m by default): each write starts
// with cold caches, and the disk has finished with the previous file.
// The pauses are not timed (-benchtime 8x: about a minute); cpu-ns/op is
// the process's CPU over the writes and the pauses.
func BenchmarkStoreWriteFile200kSpaced(b *testing.B) {
	st, path := writtenStore200k(b)
	b.ResetTimer()
	b.StopTimer()
	cpu := cputime.Start()
	for range b.N {
		time.Sleep(5 * time.Second)
		b.StartTimer()
		if err := st.WriteFile(path); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
	cpu.PerOp(b)
}

// writtenStore200k returns a store holding the groups of
// BenchmarkWriteFile200k and the path of the file it wrote once (the
// benchmark's bytes per write).
func writtenStore200k(b *testing.B) (*Store, string) {
	st := restoredStore(b, benchGroups(200_000))
	path := filepath.Join(b.TempDir(), "f")
	require.NoError(b, st.WriteFile(path))
	fi, err := os.Stat(path)
	require.NoError(b, err)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	return st, path
}

func BenchmarkReadFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f")
	require.NoError(b, WriteFile(path, benchGroups(1000)))
	fi, err := os.Stat(path)
	require.NoError(b, err)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
}

// --- Interoperability with the real Pushgateway ---------------------------

var updatePersistFixture = flag.Bool("update-persist-fixture", false,
	"rewrite testdata/persist/pushgateway-1.5.1.data from the real Pushgateway")

const (
	pushgatewayBinary  = "/usr/bin/prometheus-pushgateway"
	pushgatewayFixture = "testdata/persist/pushgateway-1.5.1.data"
)

// pgPush is one request to the Pushgateway. Bodies are built from fams: the
// text format via expfmt, protobuf like client_golang's push package does.
type pgPush struct {
	method   string
	path     string            // after /metrics/
	grouping map[string]string // what path decodes to
	proto    bool
	fams     []*dto.MetricFamily
	fail     bool // carries a timestamp: 400, only the failure time changes
}

func pgPushes() []pgPush {
	all := pushedFamilies()
	timestamped := &dto.MetricFamily{
		Name: proto.String("with_timestamp"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}, TimestampMs: proto.Int64(1700000000000)}},
	}
	gauge := func(name string, v float64) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(v)}}}}
	}
	batch := map[string]string{"job": "batch", "instance": "i1"}
	paths := map[string]string{"job": "proto_job", "dir": "/var/tmp"}
	multi := map[string]string{"job": "multi"}
	failing := map[string]string{"job": "failing"}
	return []pgPush{
		{method: "PUT", path: "job/batch/instance/i1", grouping: batch, fams: all},
		{method: "PUT", path: "job/proto_job/dir@base64/L3Zhci90bXA", grouping: paths, proto: true, fams: []*dto.MetricFamily{all[0], all[3], all[4]}},
		{method: "POST", path: "job/batch/instance/i1/empty@base64/=", grouping: map[string]string{"job": "batch", "instance": "i1", "empty": ""}, fams: []*dto.MetricFamily{gauge("in_empty_group", 5)}},
		{method: "POST", path: "job/multi", grouping: multi, fams: []*dto.MetricFamily{gauge("first_gauge", 1)}},
		{method: "POST", path: "job/multi", grouping: multi, proto: true, fams: []*dto.MetricFamily{gauge("second_gauge", 2)}},
		{method: "PUT", path: "job/failing", grouping: failing, fams: []*dto.MetricFamily{gauge("ok_metric", 1)}},
		{method: "POST", path: "job/failing", grouping: failing, fams: []*dto.MetricFamily{timestamped}, fail: true},
		{method: "POST", path: "job/fresh_fail", grouping: map[string]string{"job": "fresh_fail"}, fams: []*dto.MetricFamily{timestamped}, fail: true},
	}
}

// pgModel is what the pushes must leave in a group: for every family, the
// index of the push that last wrote it, and the families' expected content.
type pgModel struct {
	written  map[string]int // family name → push index
	want     map[string]*dto.MetricFamily
	lastOK   int // index of the last successful push, -1 if none
	lastFail int // index of the last failed push, -1 if none
}

func modelPushes(pushes []pgPush) map[GroupKey]*pgModel {
	models := map[GroupKey]*pgModel{}
	for i, p := range pushes {
		k := NewGroupKey(p.grouping)
		m := models[k]
		if m == nil {
			m = &pgModel{written: map[string]int{}, want: map[string]*dto.MetricFamily{}, lastOK: -1, lastFail: -1}
			models[k] = m
		}
		if p.fail {
			m.lastFail = i
			m.written[PushFailureTimeName] = i
			if m.lastOK < 0 {
				m.written[PushTimeName] = i
			}
			continue
		}
		if p.method == "PUT" {
			for name := range m.want {
				delete(m.want, name)
				delete(m.written, name)
			}
		}
		for _, mf := range p.fams {
			m.want[mf.GetName()] = withGroupingLabels(mf, p.grouping)
			m.written[mf.GetName()] = i
		}
		m.lastOK = i
		m.written[PushTimeName] = i
		if _, ok := m.written[PushFailureTimeName]; !ok {
			m.written[PushFailureTimeName] = i
		}
	}
	return models
}

// checkPushgatewayGroups checks groups read from a file the Pushgateway wrote
// after pushes. Within [from, to] if from is not zero.
func checkPushgatewayGroups(t *testing.T, pushes []pgPush, groups []GroupSnapshot, from, to time.Time) {
	t.Helper()
	models := modelPushes(pushes)
	require.Len(t, groups, len(models))
	for _, g := range groups {
		m := models[g.Key]
		require.NotNil(t, m, "unexpected group %q", g.Key)
		require.Zero(t, g.Version, "the Pushgateway knows no versions")
		fams := map[string]FamilySnapshot{}
		for _, f := range g.Families {
			fams[f.Family.GetName()] = f
			if !from.IsZero() {
				require.False(t, f.Time.Before(from) || f.Time.After(to), "time of %s in %q outside the test", f.Family.GetName(), g.Key)
			}
		}
		require.ElementsMatch(t, sortedMapKeys(m.written), sortedMapKeys(fams), "families of %q", g.Key)
		for name, want := range m.want {
			got := fams[name].Family
			require.Equal(t, want.GetType(), got.GetType(), name)
			require.Equal(t, want.GetHelp(), got.GetHelp(), name)
			require.Equal(t, familySamples(want), familySamples(got), name)
		}
		checkPushTimes(t, g.Key, m, fams)
	}
}

// checkPushTimes checks that families written by one push share its time,
// later pushes have later times, and the push-time gauges hold those times.
func checkPushTimes(t *testing.T, key GroupKey, m *pgModel, fams map[string]FamilySnapshot) {
	t.Helper()
	for a, ia := range m.written {
		for b, ib := range m.written {
			ta, tb := fams[a].Time, fams[b].Time
			switch {
			case ia == ib:
				require.True(t, ta.Equal(tb), "%s and %s of %q were written together", a, b, key)
			case ia < ib:
				require.True(t, ta.Before(tb), "%s of %q was written before %s", a, key, b)
			}
		}
	}
	gaugeOf := func(name string) float64 { return fams[name].Family.Metric[0].GetGauge().GetValue() }
	asFloat := func(tm time.Time) float64 { return float64(tm.UnixNano()) / 1e9 }
	if m.lastOK >= 0 {
		require.Equal(t, asFloat(fams[PushTimeName].Time), gaugeOf(PushTimeName), "push time of %q", key)
	} else {
		require.Zero(t, gaugeOf(PushTimeName), "%q never had a successful push", key)
	}
	if m.lastFail >= 0 {
		require.Equal(t, asFloat(fams[PushFailureTimeName].Time), gaugeOf(PushFailureTimeName), "failure time of %q", key)
	} else {
		require.Zero(t, gaugeOf(PushFailureTimeName), "%q never failed", key)
	}
}

func TestReadFilePushgatewayFixture(t *testing.T) {
	groups, err := ReadFile(pushgatewayFixture)
	require.NoError(t, err)
	checkPushgatewayGroups(t, pgPushes(), groups, time.Time{}, time.Time{})
}

func TestReadFileWrittenByPushgateway(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pushgateway.data")
	pg := startPushgateway(t, file)
	from := time.Now()
	pushes := pgPushes()
	for _, p := range pushes {
		pg.push(t, p)
	}
	to := time.Now()
	pg.stop(t)

	groups, err := ReadFile(file)
	require.NoError(t, err)
	checkPushgatewayGroups(t, pushes, groups, from, to)

	if *updatePersistFixture {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(pushgatewayFixture, data, 0o644))
	}
}

func TestPushgatewayLoadsWrittenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pushring.data")
	groups := testGroups()
	require.NoError(t, WriteFile(file, groups))

	pg := startPushgateway(t, file)
	pg.requireScrapeOK(t)
	checkPushgatewayAPI(t, groups, pg.apiGroups(t))
	pg.stop(t)

	// Its shutdown persist writes back what it loaded, without our
	// versions and deadlines.
	back, err := ReadFile(file)
	require.NoError(t, err)
	for i := range groups {
		groups[i].Version = 0
		groups[i].Deadline = time.Time{}
	}
	requireSameSnapshots(t, groups, back)
}

// checkPushgatewayAPI compares groups with the Pushgateway's /api/v1/metrics.
func checkPushgatewayAPI(t *testing.T, want []GroupSnapshot, got []map[string]json.RawMessage) {
	t.Helper()
	require.Len(t, got, len(want))
	byKey := map[GroupKey]map[string]json.RawMessage{}
	for _, g := range got {
		var labels map[string]string
		require.NoError(t, json.Unmarshal(g["labels"], &labels))
		byKey[NewGroupKey(labels)] = g
	}
	for _, w := range want {
		g := byKey[w.Key]
		require.NotNil(t, g, "group %q missing", w.Key)
		var ok bool
		require.NoError(t, json.Unmarshal(g["last_push_successful"], &ok))
		require.Equal(t, lastPushOK(w), ok, "last_push_successful of %q", w.Key)
		require.Len(t, g, len(w.Families)+2, "families of %q", w.Key)
		for _, f := range w.Families {
			var jf apiFamily
			require.NoError(t, json.Unmarshal(g[f.Family.GetName()], &jf), f.Family.GetName())
			require.Equal(t, f.Family.GetType().String(), jf.Type)
			require.Equal(t, f.Family.GetHelp(), jf.Help)
			require.True(t, f.Time.Equal(jf.TimeStamp), "time of %s: want %v, got %v", f.Family.GetName(), f.Time, jf.TimeStamp)
			require.Equal(t, familySamples(f.Family), jf.samples(t, f.Family.GetName()))
		}
	}
}

func lastPushOK(g GroupSnapshot) bool {
	var ok, failed float64
	for _, f := range g.Families {
		switch f.Family.GetName() {
		case PushTimeName:
			ok = f.Family.Metric[0].GetGauge().GetValue()
		case PushFailureTimeName:
			failed = f.Family.Metric[0].GetGauge().GetValue()
		}
	}
	return failed <= ok
}

// apiFamily is a family in the Pushgateway's JSON API.
type apiFamily struct {
	TimeStamp time.Time   `json:"time_stamp"`
	Type      string      `json:"type"`
	Help      string      `json:"help"`
	Metrics   []apiMetric `json:"metrics"`
}

type apiMetric struct {
	Labels    map[string]string `json:"labels"`
	Value     *string           `json:"value"`
	Quantiles map[string]string `json:"quantiles"`
	Buckets   map[string]string `json:"buckets"`
	Count     *string           `json:"count"`
	Sum       *string           `json:"sum"`
}

// samples flattens the family like sampleMap does.
func (f apiFamily) samples(t *testing.T, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	parse := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		return v
	}
	for _, m := range f.Metrics {
		if m.Value != nil {
			out[familySampleKey(name, m.Labels)] = parse(*m.Value)
		}
		for q, v := range m.Quantiles {
			out[familySampleKey(name, m.Labels, "quantile", formatSampleFloat(parse(q)))] = parse(v)
		}
		for le, v := range m.Buckets {
			out[familySampleKey(name+"_bucket", m.Labels, "le", formatSampleFloat(parse(le)))] = parse(v)
		}
		if m.Count != nil {
			out[familySampleKey(name+"_count", m.Labels)] = parse(*m.Count)
			out[familySampleKey(name+"_sum", m.Labels)] = parse(*m.Sum)
		}
	}
	return out
}

// pushgateway is a running real Pushgateway on loopback.
type pushgateway struct {
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *logSink
}

// startPushgateway starts the real binary with file as its persistence file
// and waits until it is ready. It is killed at the end of the test at the
// latest. Without the binary the test is skipped, unless
// PUSHRING_REQUIRE_REAL=1 demands it.
func startPushgateway(t *testing.T, file string) *pushgateway {
	t.Helper()
	if _, err := os.Stat(pushgatewayBinary); err != nil {
		if os.Getenv("PUSHRING_REQUIRE_REAL") == "1" {
			t.Fatalf("real Pushgateway required: %v", err)
		}
		t.Skipf("real Pushgateway not installed: %v", err)
	}
	addr := freeLoopbackAddr(t)
	pg := &pushgateway{url: "http://" + addr, exited: make(chan struct{}), log: &logSink{}}
	pg.cmd = exec.Command(pushgatewayBinary,
		"--persistence.file="+file,
		"--web.listen-address="+addr,
		"--log.level=debug",
	)
	pg.cmd.Stdout, pg.cmd.Stderr = pg.log, pg.log
	require.NoError(t, pg.cmd.Start())
	go func() { // owned by this helper; ends when the process does
		_ = pg.cmd.Wait()
		close(pg.exited)
	}()
	t.Cleanup(func() {
		_ = pg.cmd.Process.Kill()
		<-pg.exited
	})
	pg.waitReady(t)
	return pg
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// waitReady polls /-/ready until it answers 200, the process exits, or a
// deadline passes.
func (pg *pushgateway) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(pg.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-pg.exited:
			t.Fatalf("pushgateway exited during start-up:\n%s", pg.log)
		case <-deadline.C:
			t.Fatalf("pushgateway not ready in time:\n%s", pg.log)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, on which the Pushgateway persists, and waits for exit.
func (pg *pushgateway) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, pg.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-pg.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("pushgateway did not exit after SIGTERM:\n%s", pg.log)
	}
}

func (pg *pushgateway) push(t *testing.T, p pgPush) {
	t.Helper()
	var body bytes.Buffer
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	if p.proto {
		format = expfmt.NewFormat(expfmt.TypeProtoDelim)
	}
	enc := expfmt.NewEncoder(&body, format)
	for _, mf := range p.fams {
		require.NoError(t, enc.Encode(mf))
	}
	req, err := http.NewRequest(p.method, pg.url+"/metrics/"+p.path, &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", string(format))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := http.StatusOK
	if p.fail {
		want = http.StatusBadRequest
	}
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", p.method, p.path, msg)
}

func (pg *pushgateway) apiGroups(t *testing.T) []map[string]json.RawMessage {
	t.Helper()
	resp, err := http.Get(pg.url + "/api/v1/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Status string                       `json:"status"`
		Data   []map[string]json.RawMessage `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, "success", out.Status)
	return out.Data
}

// requireScrapeOK checks the loaded file did not poison the Pushgateway's
// /metrics with an inconsistent state.
func (pg *pushgateway) requireScrapeOK(t *testing.T) {
	t.Helper()
	resp, err := http.Get(pg.url + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
}

// groupToFile converts a snapshot into the value the file holds for it, as
// encoding/gob would be given it; tests compare the streamed file with it.
func groupToFile(g GroupSnapshot) (fileGroup, error) {
	metrics := make(map[string]fileFamily, len(g.Families))
	for _, fs := range g.Families {
		name := fs.Family.GetName() // "" for a nil family too
		if name == "" {
			return fileGroup{}, errors.New("family without a name")
		}
		if _, dup := metrics[name]; dup {
			return fileGroup{}, fmt.Errorf("duplicate family %q", name)
		}
		metrics[name] = fileFamily{Timestamp: fs.Time, GobbableMetricFamily: &protoFamily{mf: fs.Family}}
	}
	return fileGroup{Labels: g.Key.Map(), Metrics: metrics, Version: g.Version, Deadline: g.Deadline}, nil
}
