package store_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// exposeOnly exposes the groups whose key hash is in hashes.
type exposeOnly struct {
	hashes map[uint64]bool
	gen    atomic.Uint64
	asked  atomic.Int64
}

func (e *exposeOnly) Exposes(h uint64) bool { e.asked.Add(1); return e.hashes[h] }
func (e *exposeOnly) Generation() uint64  { return e.gen.Load() }

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
