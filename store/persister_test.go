package store

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// fakePersistSource is a persistSource whose content the test sets. It records when
// each snapshot was taken and what Restore received.
type fakePersistSource struct {
	mu        sync.Mutex
	groups    []GroupSnapshot
	snapshots []time.Time
	restored  []GroupSnapshot
	reject    map[GroupKey]bool // Restore rejects these keys
	changed   chan struct{}
}

func newFakePersistSource() *fakePersistSource {
	return &fakePersistSource{changed: make(chan struct{}, 1)}
}

// set replaces the content and signals a change, as the store does.
func (f *fakePersistSource) set(groups []GroupSnapshot) {
	f.mu.Lock()
	f.groups = groups
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakePersistSource) WriteFile(path string) error {
	f.mu.Lock()
	f.snapshots = append(f.snapshots, time.Now())
	groups := f.groups
	f.mu.Unlock()
	return WriteFile(path, groups)
}

func (f *fakePersistSource) Changed() <-chan struct{} { return f.changed }

func (f *fakePersistSource) Restore(groups []GroupSnapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, g := range groups {
		if f.reject[g.Key] {
			errs = append(errs, fmt.Errorf("group %q: %w", g.Key, ErrInconsistent))
			continue
		}
		f.restored = append(f.restored, g)
	}
	return errors.Join(errs...)
}

func (f *fakePersistSource) snapshotTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.snapshots...)
}

// logSink is a log sink safe for the Run goroutine and the test.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logSink) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logSink) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type persistHarness struct {
	p    *Persister
	src  *fakePersistSource
	logs *logSink
	file string
}

func newPersistHarness(t *testing.T, interval time.Duration) *persistHarness {
	t.Helper()
	h := &persistHarness{src: newFakePersistSource(), logs: &logSink{}, file: filepath.Join(t.TempDir(), "pushring.data")}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := newPersister(PersistConfig{File: h.file, Interval: interval}, h.src, logger, prometheus.NewRegistry())
	require.NoError(t, err)
	h.p = p
	return h
}

// start runs the persister inside a synctest bubble until the returned stop
// is called or the test ends, and lets it settle.
func (h *persistHarness) start(t *testing.T) (stop func() error) {
	stop = runPersister(t, h.p)
	synctest.Wait()
	return stop
}

// runPersister runs p until the returned stop is called, or the test ends;
// stop returns Run's error.
func runPersister(t *testing.T, p *Persister) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() }) // before TempDir's cleanup: the last write lands first
	return stop
}

func (h *persistHarness) writes(t *testing.T, result string) int {
	return int(selfMetricValue(t, h.p.metrics.writes.WithLabelValues(result)))
}

// metricValue reads a counter or gauge.
func selfMetricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	require.NoError(t, m.Write(&out))
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// advance moves the fake clock of the synctest bubble by d (returning at
// once in real time) and lets every goroutine of the bubble settle.
func advanceFake(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func groupsAtVersion(v uint64) []GroupSnapshot {
	g := testGroups()[:1]
	g[0].Version = v
	return g
}

func TestPersisterNoWriteWithoutChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPersistHarness(t, time.Minute)
		stop := h.start(t)
		advanceFake(time.Hour)
		require.Zero(t, h.writes(t, "success"))
		require.NoFileExists(t, h.file)

		require.NoError(t, stop())
		require.Equal(t, 1, h.writes(t, "success"), "shutdown always writes")
		got, err := ReadFile(h.file)
		require.NoError(t, err)
		require.Empty(t, got)
	})
}

func TestPersisterPacesWritesByInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Minute
		h := newPersistHarness(t, interval)
		began := time.Now()
		stop := h.start(t)

		// A change every second for five intervals, each between ticks of
		// the interval so no change and write share an instant.
		advanceFake(time.Second / 2)
		const changes = 300
		for v := range changes {
			h.src.set(groupsAtVersion(uint64(v)))
			advanceFake(time.Second)
		}
		advanceFake(10 * interval)

		times := h.src.snapshotTimes()
		require.Len(t, times, changes/int(interval/time.Second), "one write per interval while changes keep coming")
		require.Equal(t, began.Add(interval), times[0], "first write one interval after start")
		for i := 1; i < len(times); i++ {
			require.GreaterOrEqual(t, times[i].Sub(times[i-1]), interval)
		}
		got, err := ReadFile(h.file)
		require.NoError(t, err)
		requireSameSnapshots(t, groupsAtVersion(changes-1), got)
		require.Contains(t, h.logs.String(), "metrics persisted")

		require.NoError(t, stop())
		require.Len(t, h.src.snapshotTimes(), len(times)+1, "shutdown writes once more")
	})
}

func TestPersisterWritesAtOnceWhenIntervalPassed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPersistHarness(t, time.Minute)
		stop := h.start(t)
		advanceFake(2 * time.Minute)

		changedAt := time.Now()
		h.src.set(groupsAtVersion(1))
		synctest.Wait()
		require.Equal(t, []time.Time{changedAt}, h.src.snapshotTimes())

		// The write just now paces the next change by a full interval.
		advanceFake(time.Second)
		h.src.set(groupsAtVersion(2))
		advanceFake(time.Minute - time.Second - 1)
		require.Len(t, h.src.snapshotTimes(), 1)
		advanceFake(1)
		require.Len(t, h.src.snapshotTimes(), 2)
		require.NoError(t, stop())
	})
}

// TestPersisterWriteErrorRetriedAfterInterval: a failed write is tried
// again an interval later without any further change, until it succeeds.
func TestPersisterWriteErrorRetriedAfterInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPersistHarness(t, time.Minute)
		require.NoError(t, os.Mkdir(h.file, 0o700)) // the rename onto it fails
		stop := h.start(t)

		h.src.set(groupsAtVersion(1))
		advanceFake(time.Minute)
		require.Equal(t, 1, h.writes(t, "error"))
		require.Zero(t, h.writes(t, "success"))
		require.Contains(t, h.logs.String(), "error persisting metrics")

		advanceFake(time.Minute)
		require.Equal(t, 2, h.writes(t, "error"), "retried after the interval, with no new change")

		require.NoError(t, os.Remove(h.file))
		advanceFake(time.Minute)
		require.Equal(t, 1, h.writes(t, "success"))
		require.NotZero(t, selfMetricValue(t, h.p.metrics.lastSuccess))
		got, err := ReadFile(h.file)
		require.NoError(t, err)
		requireSameSnapshots(t, groupsAtVersion(1), got)

		advanceFake(time.Hour)
		require.Equal(t, 1, h.writes(t, "success"), "no write without a change once it succeeded")
		require.Equal(t, 2, h.writes(t, "error"))

		require.NoError(t, stop())
		require.Equal(t, 2, h.writes(t, "success"))
	})
}

func TestPersisterShutdownWriteErrorIsReturned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPersistHarness(t, time.Minute)
		require.NoError(t, os.Mkdir(h.file, 0o700))
		stop := h.start(t)
		h.src.set(groupsAtVersion(1))
		err := stop()
		require.ErrorContains(t, err, "persist metrics at shutdown")
		require.Equal(t, 1, h.writes(t, "error"))
		requireNoTempFiles(t, filepath.Dir(h.file))
	})
}

func TestPersisterWithoutFileOnlyWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakePersistSource()
		p, err := newPersister(PersistConfig{Interval: time.Minute}, src, slog.New(slog.DiscardHandler), nil)
		require.NoError(t, err)
		stop := runPersister(t, p)
		src.set(groupsAtVersion(1))
		advanceFake(time.Hour)
		require.NoError(t, stop())
		require.Empty(t, src.snapshotTimes())

		n, err := p.Load()
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

func TestPersisterLoad(t *testing.T) {
	h := newPersistHarness(t, time.Minute)
	groups := testGroups()
	require.NoError(t, WriteFile(h.file, groups))
	h.src.reject = map[GroupKey]bool{groups[1].Key: true, groups[2].Key: true}

	n, err := h.p.Load()
	require.NoError(t, err)
	require.Equal(t, len(groups)-2, n)
	requireSameSnapshots(t, []GroupSnapshot{groups[0], groups[3]}, h.src.restored)
	require.Equal(t, 2.0, selfMetricValue(t, h.p.metrics.dropped.WithLabelValues("inconsistent")))
	require.Contains(t, h.logs.String(), "dropped a persisted group")
	require.FileExists(t, h.file, "a readable file stays where it is")
}

// Temporary files of interrupted writes, ours and the Pushgateway's, are
// removed at start; files that only share a prefix stay.
func TestPersisterLoadRemovesStaleTemps(t *testing.T) {
	h := newPersistHarness(t, time.Minute)
	require.NoError(t, WriteFile(h.file, testGroups()))
	stale := []string{h.file + ".in_progress", h.file + ".in_progress.123456", h.file + ".in_progress.abc"}
	kept := []string{h.file + ".in_progressive", h.file + ".corrupt-1700000000"}
	for _, f := range append(stale, kept...) {
		require.NoError(t, os.WriteFile(f, []byte("partial"), 0o600))
	}
	_, err := h.p.Load()
	require.NoError(t, err)
	for _, f := range stale {
		require.NoFileExists(t, f)
	}
	for _, f := range kept {
		require.FileExists(t, f)
	}
	require.FileExists(t, h.file)
	require.Contains(t, h.logs.String(), "removed temporary persistence files of interrupted writes")
	require.Contains(t, h.logs.String(), "files=3")
}

func TestPersisterLoadMissingFile(t *testing.T) {
	h := newPersistHarness(t, time.Minute)
	n, err := h.p.Load()
	require.NoError(t, err)
	require.Zero(t, n)
	require.Empty(t, h.src.restored)
}

func TestPersisterLoadSkipsInvalidGroups(t *testing.T) {
	h := newPersistHarness(t, time.Minute)
	good := testGroups()[0]
	fg, err := groupToFile(good)
	require.NoError(t, err)
	raw := map[string]fileGroup{good.Key.String(): fg, "job": {}}
	require.NoError(t, os.WriteFile(h.file, gobEncoded(t, raw), 0o600))

	n, err := h.p.Load()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	requireSameSnapshots(t, []GroupSnapshot{good}, h.src.restored)
	require.Equal(t, 1.0, selfMetricValue(t, h.p.metrics.dropped.WithLabelValues("invalid")))
}

func TestPersisterLoadMovesCorruptFileAside(t *testing.T) {
	valid := encodedTestGroups(t)
	cases := map[string][]byte{
		"empty":     {},
		"truncated": valid[:len(valid)-10],
		"garbage":   []byte("\x00\x01garbage"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newPersistHarness(t, time.Minute)
				require.NoError(t, os.WriteFile(h.file, data, 0o600))
				aside := h.file + ".corrupt-" + strconv.FormatInt(time.Now().Unix(), 10)
				// An earlier quarantine in the same second must survive.
				require.NoError(t, os.WriteFile(aside, []byte("earlier"), 0o600))

				n, err := h.p.Load()
				require.NoError(t, err)
				require.Zero(t, n)
				require.Empty(t, h.src.restored)
				require.NoFileExists(t, h.file)
				requireFileContent(t, aside, "earlier")
				requireFileContent(t, aside+"-1", string(data))
				require.Contains(t, h.logs.String(), "could not load persisted metrics")

				// The next write creates a fresh file and leaves both alone.
				stop := h.start(t)
				require.NoError(t, stop())
				got, err := ReadFile(h.file)
				require.NoError(t, err)
				require.Empty(t, got)
				requireFileContent(t, aside+"-1", string(data))
			})
		})
	}
}

func TestPersisterLoadUnreadableFileFails(t *testing.T) {
	h := newPersistHarness(t, time.Minute)
	require.NoError(t, os.Mkdir(h.file, 0o700))
	_, err := h.p.Load()
	require.Error(t, err)
	require.DirExists(t, h.file, "an unreadable path is not moved aside")
}

func TestPersistConfigFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want PersistConfig
	}{
		{name: "defaults", want: PersistConfig{Interval: DefaultPersistInterval}},
		{
			name: "set",
			args: []string{"-persistence.file=/var/lib/pushring/data", "-persistence.interval=30s"},
			want: PersistConfig{File: "/var/lib/pushring/data", Interval: 30 * time.Second},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg PersistConfig
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			require.NoError(t, fs.Parse(tc.args))
			require.Equal(t, tc.want, cfg)
			require.NoError(t, cfg.Validate())
		})
	}
}

func TestPersistConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     PersistConfig
		wantErr string
	}{
		{name: "memory only", cfg: PersistConfig{}},
		{name: "zero interval", cfg: PersistConfig{File: "f"}},
		{name: "negative interval", cfg: PersistConfig{File: "f", Interval: -time.Second}, wantErr: "persistence.interval"},
		{name: "directory as file", cfg: PersistConfig{File: "/var/lib/", Interval: time.Minute}, wantErr: "persistence.file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestNewPersisterChecksDirectory(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	for name, file := range map[string]string{
		"missing directory": filepath.Join(dir, "absent", "f"),
		"parent is a file":  filepath.Join(notDir, "f"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewPersister(PersistConfig{File: file, Interval: time.Minute}, nil, slog.New(slog.DiscardHandler), nil)
			require.ErrorContains(t, err, "persistence.file")
		})
	}
}

func TestPersisterMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := newPersister(PersistConfig{Interval: time.Minute}, newFakePersistSource(), slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	require.ElementsMatch(t, []string{
		"pushring_persistence_writes_total",
		"pushring_persistence_last_success_timestamp_seconds",
		"pushring_persistence_write_duration_seconds",
		"pushring_persistence_groups_dropped_total",
	}, names)
}

// newTestStore returns a real Store on a fresh registry.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	st, err := New(Config{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	return st
}

// applyFamilies pushes fams to the group of grouping, sanitised as ingest
// would.
func applyFamilies(t *testing.T, st *Store, grouping map[string]string, replace bool, at time.Time, fams ...*dto.MetricFamily) error {
	t.Helper()
	p := Push{Key: NewGroupKey(grouping), Replace: replace, Families: map[string]*dto.MetricFamily{}, Time: at}
	for _, mf := range fams {
		p.Families[mf.GetName()] = withGroupingLabels(mf, grouping)
	}
	return st.Apply(p)
}

func TestPersistStoreRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pushring.data")
	st := newTestStore(t)
	p, err := NewPersister(PersistConfig{File: file, Interval: time.Hour}, st, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	stop := runPersister(t, p)

	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	batch := map[string]string{"job": "batch", "dir": "/var/tmp"}
	require.NoError(t, applyFamilies(t, st, batch, true, t0, pushedFamilies()...))
	later := &dto.MetricFamily{Name: proto.String("later_gauge"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}
	require.NoError(t, applyFamilies(t, st, batch, false, t0.Add(time.Minute), later))
	stamped := proto.Clone(later).(*dto.MetricFamily)
	stamped.Metric[0].TimestampMs = proto.Int64(1)
	require.ErrorIs(t, applyFamilies(t, st, map[string]string{"job": "failed"}, false, t0.Add(2*time.Minute), stamped), ErrInconsistent)
	want := st.Snapshot()
	require.Len(t, want, 2)

	require.NoError(t, stop(), "shutdown persists")

	st2 := newTestStore(t)
	p2, err := NewPersister(PersistConfig{File: file, Interval: time.Hour}, st2, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	n, err := p2.Load()
	require.NoError(t, err)
	require.Equal(t, len(want), n)
	requireSameSnapshots(t, want, st2.Snapshot())
}

func TestPersistStoreDropsInconsistentGroups(t *testing.T) {
	counter := &dto.MetricFamily{Name: proto.String("shared_name"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1)}}}}
	gauge := &dto.MetricFamily{Name: proto.String("shared_name"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	a, b := map[string]string{"job": "a"}, map[string]string{"job": "b"}
	groups := []GroupSnapshot{
		{Key: NewGroupKey(a), Families: []FamilySnapshot{{Family: withGroupingLabels(counter, a), Time: at}}},
		{Key: NewGroupKey(b), Families: []FamilySnapshot{{Family: withGroupingLabels(gauge, b), Time: at}}},
	}
	h := newPersistHarness(t, time.Minute)
	require.NoError(t, WriteFile(h.file, groups)) // the file format does not check consistency
	st := newTestStore(t)
	h.p.src = st

	n, err := h.p.Load()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1.0, selfMetricValue(t, h.p.metrics.dropped.WithLabelValues("inconsistent")))
	requireSameSnapshots(t, groups[:1], st.Snapshot())
}

func TestPersistStoreDropsGroupsBeyondLimits(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	gauge := &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}
	var groups []GroupSnapshot
	for _, job := range []string{"a", "b", "c"} {
		grouping := map[string]string{"job": job}
		groups = append(groups, GroupSnapshot{Key: NewGroupKey(grouping), Families: []FamilySnapshot{{Family: withGroupingLabels(gauge, grouping), Time: at}}})
	}
	h := newPersistHarness(t, time.Minute)
	require.NoError(t, WriteFile(h.file, groups))
	st, err := New(Config{MaxGroups: 2}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	h.p.src = st

	n, err := h.p.Load()
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, 1.0, selfMetricValue(t, h.p.metrics.dropped.WithLabelValues("limit")))
	require.Zero(t, selfMetricValue(t, h.p.metrics.dropped.WithLabelValues("inconsistent")))
	require.Contains(t, h.logs.String(), "raise --store.max-groups")
	requireSameSnapshots(t, groups[:2], st.Snapshot())
}

func TestPersistStoreChangeTriggersWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPersistHarness(t, time.Minute)
		st := newTestStore(t)
		h.p.src = st
		stop := h.start(t)

		grouping := map[string]string{"job": "timed"}
		require.NoError(t, applyFamilies(t, st, grouping, true, time.Now(), pushedFamilies()...))
		advanceFake(time.Minute)
		require.Equal(t, 1, h.writes(t, "success"))
		got, err := ReadFile(h.file)
		require.NoError(t, err)
		requireSameSnapshots(t, st.Snapshot(), got)
		require.NoError(t, stop())
	})
}
