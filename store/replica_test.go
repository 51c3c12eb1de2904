package store_test

import (
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

// exposeOnly exposes the groups whose key hash is in hashes.
type exposeOnly struct {
	hashes map[uint64]bool
	gen    atomic.Uint64
	asked  atomic.Int64
}

func (e *exposeOnly) Exposes(h uint64) bool { e.asked.Add(1); return e.hashes[h] }
func (e *exposeOnly) Generation() uint64    { return e.gen.Load() }

func TestExposureFiltersScrapeAndRange(t *testing.T) {
	s, _ := newStore(t, nil)
	at := time.Unix(1700000000, 0)
	shown, held := key("job", "shown"), key("job", "held")
	apply(t, s, textPush(t, shown, true, at, "m_shown 1\n"))
	apply(t, s, textPush(t, held, true, at, "m_held 2\n"))

	e := &exposeOnly{hashes: map[uint64]bool{shown.Hash(): true}}
	s.SetExposure(e)
	out := string(scrape(t, s, store.FormatText))
	require.Contains(t, out, "m_shown")
	require.NotContains(t, out, "m_held", "a copy held for another peer is not scraped")
	var ranged []store.GroupKey
	s.Range(func(g store.GroupSnapshot) bool { ranged = append(ranged, g.Key); return true })
	require.Equal(t, []store.GroupKey{shown}, ranged)
	groups, _ := s.Stats()
	require.Equal(t, 2, groups, "the store holds both")
	_, ok := s.Group(held)
	require.True(t, ok, "hand-off and repair read every group")

	asked := e.asked.Load()
	scrape(t, s, store.FormatText)
	require.Equal(t, asked, e.asked.Load(), "answers are kept within a generation")

	e.hashes[held.Hash()] = true // before the generation moves: read under the store lock only
	e.gen.Add(1)
	require.Contains(t, string(scrape(t, s, store.FormatText)), "m_held", "a new generation asks again")

	s.SetExposure(nil)
	require.Contains(t, string(scrape(t, s, store.FormatText)), "m_shown")
}

func TestEntriesAndTombstoneOf(t *testing.T) {
	s, err := store.New(store.Config{TombstoneTTL: time.Hour}, nil, nil)
	require.NoError(t, err)
	at := time.Unix(1700000000, 0)
	a, b := key("job", "a"), key("job", "b")
	apply(t, s, textPush(t, a, true, at, "m 1\n"))
	apply(t, s, textPush(t, b, true, at, "m 1\n"))
	gb := group(t, s, b)
	require.True(t, s.Delete(b))
	v, ok := s.TombstoneOf(b)
	require.True(t, ok)
	require.Greater(t, v, gb.Version, "the delete is newer than the group")
	_, ok = s.TombstoneOf(a)
	require.False(t, ok, "a group that exists has no tombstone")

	byKey := map[store.GroupKey]store.Entry{}
	for _, e := range s.Entries() {
		byKey[e.Key] = e
	}
	require.Len(t, byKey, 2)
	require.False(t, byKey[a].Deleted)
	require.Equal(t, group(t, s, a).Version, byKey[a].Version)
	require.Equal(t, store.Entry{Key: b, Version: v, Deleted: true}, byKey[b])
}

// TestGroupWireIsTheGroup: the wire encoding of a group decodes to the
// same families as its snapshot, for every kind of family.
func TestGroupWireIsTheGroup(t *testing.T) {
	s, _ := newStore(t, nil)
	at := time.Unix(1700000000, 0)
	k := key("job", "w", "instance", "i")
	apply(t, s, textPush(t, k, true, at, `# HELP w_total Counted.
# TYPE w_total counter
w_total{a="x"} 3
# TYPE w_hist histogram
w_hist_bucket{le="1"} 1
w_hist_bucket{le="+Inf"} 2
w_hist_sum 3
w_hist_count 2
# TYPE w_sum summary
w_sum{quantile="0.5"} 1
w_sum_sum 2
w_sum_count 3
w_untyped 7
`))
	gs := group(t, s, k)
	wg, ok := s.GroupWire(k)
	require.True(t, ok)
	require.Equal(t, gs.Key, wg.Key)
	require.Equal(t, gs.Version, wg.Version)
	require.Len(t, wg.Families, len(gs.Families))
	for i, f := range wg.Families {
		want := gs.Families[i]
		require.Equal(t, want.Family.GetName(), f.Name)
		require.True(t, want.Time.Equal(f.Time), f.Name)
		got := &dto.MetricFamily{}
		require.NoError(t, proto.Unmarshal(f.MetricFamily, got), f.Name)
		require.True(t, proto.Equal(want.Family, got), "%s:\n%v\n%v", f.Name, want.Family, got)
	}
	_, ok = s.GroupWire(key("job", "none"))
	require.False(t, ok)
}
