package store

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
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
	x := newSeriesIndex()
	var hashes []uint64
	for _, shard := range []uint64{0x00, 0xa7} {
		for k := range uint64(40) {
			// Keys whose homes lie near the end of any table, so runs
			// wrap around, and pairs of hashes that share their key.
			key := uint64(0xfff00000) | k<<8 | k&0xf
			hashes = append(hashes, x.hashFor(shard<<56|key), x.hashFor(shard<<56|1<<40|key))
		}
	}
	for range 40 { // and some spread over every table
		hashes = append(hashes, rng.Uint64())
	}
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
			return x.indexedOf(e.h, g) == x.indexedOf(h, g) && e.g == g
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
			want[x.indexedOf(e.h, e.g)] += n
		}
		require.True(t, maps.Equal(got, want), "step %d: index and model differ:\n%v\n%v", step, got, want)

		probe := hashes[rng.IntN(len(hashes))]
		var named, owners []uint32
		x.each(probe, func(o *group) bool { named = append(named, o.id); return true })
		keys := map[indexed]int{} // entries by table and key
		for e, n := range model {
			at := x.indexedOf(e.h, nil)
			keys[at] += n
			if at == x.indexedOf(probe, nil) {
				for range n {
					owners = append(owners, e.g.id)
				}
			}
		}
		slices.Sort(named)
		slices.Sort(owners)
		require.Equal(t, owners, named, "step %d: each(%x)", step, probe)
		require.Equal(t, keys[x.indexedOf(probe, nil)] <= 1, x.unshared(probe), "step %d: unshared(%x)", step, probe)
	}
	require.Positive(t, len(model), "the model never filled")
}

// TestSeriesIndexEachStops checks that each stops at the first group fn
// declines.
func TestSeriesIndexEachStops(t *testing.T) {
	x := newSeriesIndex()
	a, b := &group{}, &group{}
	x.register(a)
	x.register(b)
	h, other := x.hashFor(42), x.hashFor(42|1<<40) // the same table and key
	x.add(h, a)
	x.add(h, b)
	x.add(other, b)
	calls := 0
	x.each(h, func(*group) bool { calls++; return false })
	require.Equal(t, 1, calls)
	calls = 0
	x.each(h, func(*group) bool { calls++; return true })
	require.Equal(t, 3, calls, "hashes that share table and key are all candidates")
	require.False(t, x.unshared(h))
	x.remove(h, a)
	x.remove(other, b)
	require.True(t, x.unshared(h))
}

// TestSeriesIndexSeeded checks that the index mixes hashes with a seed of
// its own: the same hashes land in other tables of another index, so
// nobody who knows only the series can aim them at one table or run.
func TestSeriesIndexSeeded(t *testing.T) {
	x, y := newSeriesIndex(), newSeriesIndex()
	require.NotEqual(t, x.seed, y.seed)
	same := 0
	for h := range uint64(1000) {
		if x.mix(h)>>56 == y.mix(h)>>56 {
			same++
		}
	}
	require.Less(t, same, 30, "1000 hashes, 256 tables: about 4 should agree by chance")
	for _, m := range []uint64{0, 1, 42, 1 << 63, ^uint64(0)} {
		require.Equal(t, m, x.mix(x.hashFor(m)))
	}
}

// TestSeriesIndexRemoveAbsent checks that removing an entry the index
// does not hold changes nothing.
func TestSeriesIndexRemoveAbsent(t *testing.T) {
	x := newSeriesIndex()
	a, b := &group{}, &group{}
	x.register(a)
	x.register(b)
	var spread uint64 = 0x9e3779b97f4a7c15
	for h := range uint64(100) {
		x.add(h*spread, a)
	}
	before, err := x.entries()
	require.NoError(t, err)
	x.remove(7*spread, b) // held, but by a
	x.remove(12345, a)    // not held at all
	after, err := x.entries()
	require.NoError(t, err)
	require.Equal(t, before, after)
}

// TestSeriesIndexIDs checks that removed groups' ids are reused and that
// a group's id names it.
func TestSeriesIndexIDs(t *testing.T) {
	x := newSeriesIndex()
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

// hashFor returns the series hash that x mixes into m: the inverse of mix,
// for tests that place entries on purpose.
func (x *seriesIndex) hashFor(m uint64) uint64 {
	m ^= m >> 33
	m *= inverse(0xc4ceb9fe1a85ec53)
	m ^= m >> 33
	m *= inverse(0xff51afd7ed558ccd)
	m ^= m >> 33
	return m ^ x.seed
}

// inverse returns the multiplicative inverse of the odd c modulo 2^64.
func inverse(c uint64) uint64 {
	inv := c // correct to 3 bits; each step doubles them
	for range 5 {
		inv *= 2 - c*inv
	}
	return inv
}

// TestOwnHashShortcutNeedsAnUnsharedKey: a push repeating a hash its
// group's own family holds skips the index only while no other entry
// shares its key. Here group a's family is made to hold the
// hash of a series group b really stores (a stand-in for a 64-bit
// collision): a pushing b's series must still be found a duplicate.
func TestOwnHashShortcutNeedsAnUnsharedKey(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	at := time.Unix(1_700_000_000, 0)
	push := func(k GroupKey, text string) error {
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
		require.NoError(t, err)
		return s.Apply(Push{Key: k, Replace: true, Families: fams, Time: at})
	}
	a := NewGroupKey(map[string]string{"job": "j"})
	b := NewGroupKey(map[string]string{"job": "j", "instance": "i"})
	// The ingester adds the grouping labels; Apply takes them as pushed.
	require.NoError(t, push(b, "m{instance=\"i\",job=\"j\"} 1\n"))
	require.NoError(t, push(a, "m{instance=\"own\",job=\"j\"} 1\n"))

	seriesHash := func(instance string) uint64 {
		return xxhash.Sum64(appendSeriesKey(nil, "m", []*dto.LabelPair{
			{Name: proto.String("instance"), Value: proto.String(instance)},
			{Name: proto.String("job"), Value: proto.String("j")},
		}))
	}
	own, theirs := seriesHash("own"), seriesHash("i")
	s.mu.Lock()
	ga := s.groups[a]
	f := ga.slot("m").fam
	require.Equal(t, []uint64{own}, f.seriesHashes())
	copy(f.seriesHashes(), []uint64{theirs}) // a collision: the family now holds the other series
	s.series.remove(own, ga)
	s.series.add(theirs, ga)
	s.mu.Unlock()

	err = push(a, "m{instance=\"i\",job=\"j\"} 2\n")
	require.ErrorIs(t, err, ErrInconsistent, "a stored the series b holds")
	require.Contains(t, err.Error(), "was collected before with the same name and label values")
}
