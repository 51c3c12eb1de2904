package store

import "math/rand/v2"

// seriesIndex finds the groups that may own a series hash: the store-wide
// half of the consistency check (checkSeries). It holds one entry per
// (series hash, owning group) of every stored family, so it is, after the
// text itself, the largest thing the store keeps per series.
//
// An entry is one word: 32 bits of the hash (its key) and the owner's
// group id. Entries live in open-addressed tables (linear probing,
// deletion by backward shift), one of indexShards picked by another 8
// bits, so a table that grows or shrinks rehashes a 256th of the index
// under the store's lock, not all of it. A table holds no pointers: the
// collector never scans it. Tables grow by a quarter when 3/4 full and
// shrink below 1/4, so an entry costs 11 to 13 bytes while the store
// grows, where a map from hash to group cost about 23. (Growing by half
// moved each entry half as often, but left tables as little as half full:
// 16 bytes an entry.)
//
// Series hashes are not secret: anyone who can push can choose label sets
// by their hash. So the index first mixes each hash with a random seed of
// its own (mix): nobody outside can aim series at one run of a table, or
// make two series share the 40 bits the index keeps.
//
// The index is a multiset: two different series whose mixed hashes share
// table and key, or one hash owned twice by one group, each keep an
// entry, and removing one leaves the other. Since only 40 bits of a hash
// are kept, each hands out candidates: the check confirms a hit by
// comparing label sets (duplicatesIn), as it did for a full 64-bit
// collision.
type seriesIndex struct {
	tables [indexShards]indexTable
	// groups holds the group of every id, at id-1; nil at a free id.
	groups []*group
	free   []uint32 // ids not in use
	seed   uint64
}

const (
	indexShards   = 256
	minIndexTable = 16 // slots of a table once it holds an entry
)

// indexTable is one shard: an empty slot is 0 (group ids start at 1).
type indexTable struct {
	slots []uint64
	n     int
	// shared counts, for each key that more than one entry has, the
	// entries past the first; nil while there is none (as there is none
	// unless the kept bits of two hashes collide). A key not in it that a
	// group's own family holds is owned by that group alone (see
	// checkSeries).
	shared map[uint32]int
}

func newSeriesIndex() seriesIndex { return seriesIndex{seed: rand.Uint64()} }

// register gives g an id the index can name it by. Every group gets one
// when it is created; unregister returns it once the group's entries are
// gone.
func (x *seriesIndex) register(g *group) {
	if n := len(x.free); n > 0 {
		g.id = x.free[n-1]
		x.free = x.free[:n-1]
	} else {
		x.groups = append(x.groups, nil)
		g.id = uint32(len(x.groups)) //nolint:gosec // more than 2^32 groups cannot be held
	}
	x.groups[g.id-1] = g
}

func (x *seriesIndex) unregister(g *group) {
	x.groups[g.id-1] = nil
	x.free = append(x.free, g.id)
	g.id = 0
}

// mix scrambles a series hash with the index's seed (the finalizer of
// MurmurHash3, a bijection): the mixed hash picks the table (top byte) and
// is the key (low half).
func (x *seriesIndex) mix(h uint64) uint64 {
	h ^= x.seed
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func indexKey(m uint64) uint32 { return uint32(m) } //nolint:gosec // the key is the low half

func indexEntry(m uint64, id uint32) uint64 { return uint64(indexKey(m))<<32 | uint64(id) }

func entryKey(e uint64) uint32 { return uint32(e >> 32) }

// home is the slot a key is placed at, or after: the key scaled to the
// table's length.
func (t *indexTable) home(key uint32) int { return int(uint64(key) * uint64(len(t.slots)) >> 32) } //nolint:gosec // below len

func (t *indexTable) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

func (x *seriesIndex) add(h uint64, g *group) {
	m := x.mix(h)
	t := &x.tables[m>>56]
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(minIndexTable, len(t.slots)+len(t.slots)/4))
	}
	key := indexKey(m)
	i := t.home(key)
	found := false
	for ; t.slots[i] != 0; i = t.next(i) {
		found = found || entryKey(t.slots[i]) == key
	}
	if found {
		if t.shared == nil {
			t.shared = map[uint32]int{}
		}
		t.shared[key]++
	}
	t.slots[i] = indexEntry(m, g.id)
	t.n++
}

// remove forgets one entry (h, g). The store removes only the hashes a
// group's families hold, so (h, g) was added: an entry that differs from it
// only in the hash bits the index drops is the same entry.
func (x *seriesIndex) remove(h uint64, g *group) {
	m := x.mix(h)
	t := &x.tables[m>>56]
	if t.n == 0 {
		return
	}
	e := indexEntry(m, g.id)
	at := -1
	// Every entry of a key sits in the run of full slots from its home on.
	for i := t.home(indexKey(m)); t.slots[i] != 0; i = t.next(i) {
		if t.slots[i] == e {
			at = i
			break
		}
	}
	if at < 0 {
		return
	}
	if key := indexKey(m); t.shared[key] > 0 {
		if t.shared[key]--; t.shared[key] == 0 {
			delete(t.shared, key)
		}
	}
	t.deleteAt(at)
	t.n--
	if len(t.slots) > minIndexTable && t.n*4 < len(t.slots) {
		t.resize(max(minIndexTable, len(t.slots)*2/3))
	}
}

// deleteAt empties slot i, moving back the entries after it that would
// otherwise no longer be found from their home.
func (t *indexTable) deleteAt(i int) {
	for j := t.next(i); t.slots[j] != 0; j = t.next(j) {
		// The entry at j may fill the hole at i unless its home lies
		// (cyclically) in (i, j].
		k := t.home(entryKey(t.slots[j]))
		if (i < j && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = 0
}

// resize rehashes t into size slots, more than t.n.
func (t *indexTable) resize(size int) {
	old := t.slots
	t.slots = make([]uint64, size)
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := t.home(entryKey(e))
		for t.slots[i] != 0 {
			i = t.next(i)
		}
		t.slots[i] = e
	}
}

// unshared reports whether at most one entry has h's table and key.
func (x *seriesIndex) unshared(h uint64) bool {
	m := x.mix(h)
	t := &x.tables[m>>56]
	return len(t.shared) == 0 || t.shared[indexKey(m)] == 0
}

// each calls fn for every group with an entry of h's table and key, until
// fn returns false. Such a group may hold another series whose mixed hash
// shares those 40 bits: fn confirms.
func (x *seriesIndex) each(h uint64, fn func(*group) bool) {
	m := x.mix(h)
	t := &x.tables[m>>56]
	if t.n == 0 {
		return
	}
	key := indexKey(m)
	for i := t.home(key); t.slots[i] != 0; i = t.next(i) {
		if e := t.slots[i]; entryKey(e) == key && !fn(x.groups[uint32(e)-1]) { //nolint:gosec // the id is the low half
			return
		}
	}
}
