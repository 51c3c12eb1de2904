package store

import (
	"bufio"
	"encoding/gob"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// stoppedClock is a Clock at one instant, so that Restore keeps the
// deadlines of testGroups.
type stoppedClock struct{ now time.Time }

func (c stoppedClock) Now() time.Time               { return c.now }
func (c stoppedClock) NewTimer(time.Duration) Timer { panic("not used") }

// restoredStore returns a store holding groups as they are.
func restoredStore(t testing.TB, groups []GroupSnapshot) *Store {
	t.Helper()
	clock := stoppedClock{time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)}
	st, err := New(Config{Clock: clock}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, st.Restore(groups))
	return st
}

// decodeRaw decodes the file with encoding/gob itself.
func decodeRaw(t *testing.T, path string) map[string]fileGroup {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	raw := map[string]fileGroup{}
	require.NoError(t, gob.NewDecoder(bufio.NewReader(f)).Decode(&raw))
	return raw
}

// requireFileHolds checks that the file decodes, with encoding/gob, to the
// value encoding/gob would have been given for groups.
func requireFileHolds(t *testing.T, path string, groups []GroupSnapshot) {
	t.Helper()
	raw := decodeRaw(t, path)
	require.Len(t, raw, len(groups))
	for _, g := range groups {
		want, err := groupToFile(g)
		require.NoError(t, err)
		got, ok := raw[g.Key.String()]
		require.True(t, ok, "group %q missing", g.Key)
		require.Equal(t, want.Labels, got.Labels)
		require.Equal(t, want.Version, got.Version)
		require.True(t, want.Deadline.Equal(got.Deadline), "deadline of %q", g.Key)
		require.Len(t, got.Metrics, len(want.Metrics))
		for name, wf := range want.Metrics {
			gf := got.Metrics[name]
			require.True(t, wf.Timestamp.Equal(gf.Timestamp), "time of %s", name)
			require.NotNil(t, gf.GobbableMetricFamily, name)
			require.True(t, proto.Equal(wf.GobbableMetricFamily.mf, gf.GobbableMetricFamily.mf), "family %s", name)
		}
	}
}

func TestWriteFileIsTheGobValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	// Empty label values first and last in the key.
	groups := append(testGroups(),
		storedGroup(map[string]string{"a": "", "job": "x", "zz": ""}, at, time.Time{}, 0))
	require.NoError(t, WriteFile(path, groups))
	requireFileHolds(t, path, groups)

	require.NoError(t, WriteFile(path, nil))
	require.Empty(t, decodeRaw(t, path))
}

func TestStoreWriteFileIsTheGobValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	groups := append(testGroups(), storedGroup(map[string]string{"a": "", "job": "x", "zz": ""}, at, time.Time{}, 0))
	st := restoredStore(t, groups)
	require.NoError(t, st.WriteFile(path))
	want := st.Snapshot()
	require.Len(t, want, len(groups))
	requireFileHolds(t, path, want)
	got, err := ReadFile(path)
	require.NoError(t, err)
	requireSameSnapshots(t, want, got)
}

// Large counts and lengths take gob's long integer forms (the 9-byte
// placeholders hold more than one byte's worth).
func TestStoreWriteFileManyGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	groups := benchGroups(300)
	st := restoredStore(t, groups)
	require.NoError(t, st.WriteFile(path))
	requireFileHolds(t, path, st.Snapshot())
}

func TestPushgatewayLoadsStoreWrittenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pushring.data")
	st := restoredStore(t, testGroups())
	require.NoError(t, st.WriteFile(file))

	pg := startPushgateway(t, file)
	pg.requireScrapeOK(t)
	checkPushgatewayAPI(t, st.Snapshot(), pg.apiGroups(t))
	pg.stop(t)
}

// Pushes and deletes while the file is written (more groups than one batch
// of rangeRefs): each write reads back,
// every group in it whole.
func TestStoreWriteFileDuringChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	st := newTestStore(t)
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for i := range 600 {
		require.NoError(t, applyFamilies(t, st, map[string]string{"job": "churn", "instance": strconv.Itoa(i)}, true, at, pushedFamilies()...))
	}
	whole := len(st.Snapshot()[0].Families)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			grouping := map[string]string{"job": "churn", "instance": strconv.Itoa(i % 600)}
			if i%7 == 0 {
				st.Delete(NewGroupKey(grouping))
				continue
			}
			_ = applyFamilies(t, st, grouping, true, at, pushedFamilies()...)
		}
	}()
	for range 20 {
		require.NoError(t, st.WriteFile(path))
		got, err := ReadFile(path)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), 600)
		require.Greater(t, len(got), refBatch, "the write crossed batches")
		for _, g := range got {
			require.Len(t, g.Families, whole, "group %s", g.Key)
		}
	}
	close(stop)
	wg.Wait()
}

// A write that fails part-way (here the file is closed under the encoders)
// stops the copying out, ends every encoder and returns the error.
func TestStoreWriteGroupsStopsOnFailure(t *testing.T) {
	st := restoredStore(t, benchGroups(6*refBatch))
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	fw, err := newFileWriter(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	p := startEncoders(fw, 2, st.logger)
	st.collect(p)
	require.ErrorIs(t, p.stop(), os.ErrClosed)
}

// The family list a group keeps for the writer follows every kind of
// change: a PUT, a POST that adds a family, a POST that replaces one, a
// PUT that drops the others, a refused push's failure time, a hand-off.
func TestStoreWriteFileFollowsChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	st := newTestStore(t)
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	grouping := map[string]string{"job": "changes"}
	fams := pushedFamilies()
	check := func(step string) {
		t.Helper()
		require.NoError(t, st.WriteFile(path), step)
		requireFileHolds(t, path, st.Snapshot())
	}
	require.NoError(t, applyFamilies(t, st, grouping, true, at, fams[0], fams[1]))
	check("put")
	require.NoError(t, applyFamilies(t, st, grouping, false, at.Add(time.Second), fams[2]))
	check("post adding a family")
	require.NoError(t, applyFamilies(t, st, grouping, false, at.Add(2*time.Second), fams[0]))
	check("post replacing a family")
	require.NoError(t, applyFamilies(t, st, grouping, true, at.Add(3*time.Second), fams[3]))
	check("put dropping the others")
	require.True(t, st.RecordFailure(NewGroupKey(grouping), at.Add(4*time.Second)))
	require.True(t, st.RecordFailure(NewGroupKey(map[string]string{"job": "failing"}), at.Add(4*time.Second)))
	check("failure times")
	other := storedGroup(map[string]string{"job": "handed"}, at, time.Time{}, 1)
	_, err := st.Receive(other)
	require.NoError(t, err)
	check("hand-off")
	require.Len(t, st.Snapshot(), 3)
}

// A stored family that does not encode (a bug: the store rendered its text)
// is logged and left out of its group; the group's other families and the
// other groups are written whole, whichever batch they are in.
func TestStoreWriteFileLeavesOutFamilyThatDoesNotEncode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	var logged strings.Builder
	clock := stoppedClock{time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)}
	st, err := New(Config{Clock: clock}, slog.New(slog.NewTextHandler(&logged, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, st.Restore(benchGroups(3*refBatch)))
	want := st.Snapshot()

	broken := NewGroupKey(map[string]string{"job": "bench", "instance": "7"})
	st.mu.Lock()
	g := st.groups[broken]
	sl := g.slot("jobs_processed_total")
	require.NotNil(t, sl)
	f := sl.fam
	require.Nil(t, f.kept(), "the family renders its protobuf from its text")
	f.setPlainText("not a sample line\n")
	st.mu.Unlock()

	require.NoError(t, st.WriteFile(path))
	require.Contains(t, logged.String(), "persistence: stored family does not encode")
	require.Contains(t, logged.String(), "jobs_processed_total")
	for i := range want {
		if want[i].Key == broken {
			want[i].Families = slices.DeleteFunc(want[i].Families, func(fs FamilySnapshot) bool {
				return fs.Family.GetName() == "jobs_processed_total"
			})
		}
	}
	requireFileHolds(t, path, want)
}

// BenchmarkEncodeEntries encodes the map entries of 2,000 groups of
// BenchmarkStoreWriteFile200k's shape, as one encoder of a persistence
// write does, without the file: the CPU side of a write, per group.
func BenchmarkEncodeEntries(b *testing.B) {
	st := restoredStore(b, benchGroups(2000))
	var refs []groupRef
	st.mu.Lock()
	for _, g := range st.groups {
		refs = append(refs, refOf(g))
	}
	st.mu.Unlock()
	var e entryEncoder
	logger := slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	for b.Loop() {
		e.out = e.out[:0]
		for _, r := range refs {
			if err := e.group(r, logger); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(int64(len(e.out)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(refs)), "ns/group")
}
