package store

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSeriesIndexModel runs random adds and removes against a multiset of
// (hash, group). The hashes are drawn from a small set built to collide:
// two shards, keys that share their low bits (so runs of full slots form
// and wrap around the table's end), hashes that differ only above the key,
// and hashes added twice. After every step the tables must be consistent,
// and each must name exactly the groups of the entries of a hash's shard
// and key.
func TestSeriesIndexModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 17))
	var hashes []uint64
	for _, shard := range []uint64{0x00, 0xa7} {
		for k := range uint64(40) {
			key := k<<9 | 0x1f0 | k&0xf // low bits near the end of a 16- or 32-slot table
			hashes = append(hashes, shard<<56|key, shard<<56|1<<40|key)
		}
	}
	var x seriesIndex
	groups := make([]*group, 6)
	for i := range groups {
		groups[i] = &group{}
		x.register(groups[i])
	}
	type entry struct {
		h uint64
		g *group
	}
	model := map[entry]int{}
	for step := range 8000 {
		// Fill up and drain in waves, so tables both grow and shrink.
		adding := step%2000 < 1100
		h, g := hashes[rng.IntN(len(hashes))], groups[rng.IntN(len(groups))]
		if adding == (rng.IntN(4) > 0) {
			x.add(h, g)
			model[entry{h, g}]++
		} else if model[entry{h, g}] > 0 {
			x.remove(h, g)
			model[entry{h, g}]--
		} else if !slices.ContainsFunc(slices.Collect(maps.Keys(model)), func(e entry) bool {
			return e.g == g && e.h>>56 == h>>56 && indexKey(e.h) == indexKey(h)
		}) {
			x.remove(h, g) // no entry of its key and group: nothing changes
		}
		if model[entry{h, g}] == 0 {
			delete(model, entry{h, g})
		}

		got, err := x.entries()
		require.NoError(t, err, "step %d", step)
		want := map[indexed]int{}
		for e, n := range model {
			want[indexedOf(e.h, e.g)] += n
		}
		require.True(t, maps.Equal(got, want), "step %d: index and model differ:\n%v\n%v", step, got, want)

		probe := hashes[rng.IntN(len(hashes))]
		var named, owners []uint32
		x.each(probe, func(o *group) bool { named = append(named, o.id); return true })
		for e, n := range model {
			if e.h>>56 == probe>>56 && indexKey(e.h) == indexKey(probe) {
				for range n {
					owners = append(owners, e.g.id)
				}
			}
		}
		slices.Sort(named)
		slices.Sort(owners)
		require.Equal(t, owners, named, "step %d: each(%x)", step, probe)
	}
	require.Positive(t, len(model), "the model never filled")
}

// TestSeriesIndexEachStops checks that each stops at the first group fn
// declines.
func TestSeriesIndexEachStops(t *testing.T) {
	var x seriesIndex
	a, b := &group{}, &group{}
	x.register(a)
	x.register(b)
	x.add(42, a)
	x.add(42, b)
	x.add(42|1<<40, b) // another hash of the same key
	calls := 0
	x.each(42, func(*group) bool { calls++; return false })
	require.Equal(t, 1, calls)
	calls = 0
	x.each(42, func(*group) bool { calls++; return true })
	require.Equal(t, 3, calls, "hashes that share shard and key are all candidates")
	require.False(t, x.unshared(42))
	x.remove(42, a)
	x.remove(42|1<<40, b)
	require.True(t, x.unshared(42))
}

// TestSeriesIndexIDs checks that removed groups' ids are reused and that
// a group's id names it.
func TestSeriesIndexIDs(t *testing.T) {
	var x seriesIndex
	gs := []*group{{}, {}, {}}
	for _, g := range gs {
		x.register(g)
	}
	require.Equal(t, []uint32{1, 2, 3}, []uint32{gs[0].id, gs[1].id, gs[2].id})
	x.unregister(gs[1])
	require.Zero(t, gs[1].id)
	n := &group{}
	x.register(n)
	require.Equal(t, uint32(2), n.id)
	require.Same(t, n, x.groups[n.id-1])
	require.Len(t, x.groups, 3)
}
