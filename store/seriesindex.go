package store

// seriesIndex finds the groups that may own a series hash: the store-wide
// half of the consistency check (checkSeries). It holds one entry per
// (series hash, owning group) of every stored family, so it is, after the
// text itself, the largest thing the store keeps per series.
//
// An entry is one word: the low 32 bits of the hash (its key) and the
// owner's group id. Entries live in open-addressed tables (linear probing,
// deletion by backward shift), one of indexShards picked by the hash's top
// byte, so a table that grows or shrinks rehashes a 256th of the index
// under the store's lock, not all of it. A table holds no pointers: the
// collector never scans it. With tables kept between 7/16 and 7/8 full, an
// entry costs 9 to 18 bytes, where a map from hash to group cost about 23.
//
// The index is a multiset: two different series whose hashes share shard
// and key, or one hash owned twice by one group, each keep an entry, and
// removing one leaves the other. Since only 40 bits of a hash are kept,
// each hands out candidates: the check confirms a hit by comparing label
// sets (duplicatesIn), as it did for a full 64-bit collision.
type seriesIndex struct {
	tables [indexShards]indexTable
	// groups holds the group of every id, at id-1; nil at a free id.
	groups []*group
	free   []uint32 // ids not in use
}

const (
	indexShards   = 256
	minIndexTable = 16 // slots of a table once it holds an entry; a power of two
)

// indexTable is one shard: slots is empty or a power of two long, and an
// empty slot is 0 (group ids start at 1).
type indexTable struct {
	slots []uint64
	n     int
	// shared counts the entries whose key an earlier entry of the table
	// already has: while it is 0, a key found in a group's own family is
	// owned by that group alone (see checkSeries).
	shared int
}

func newSeriesIndex() seriesIndex { return seriesIndex{} }

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

func indexKey(h uint64) uint32 { return uint32(h) } //nolint:gosec // the key is the low half

func indexEntry(h uint64, id uint32) uint64 { return uint64(indexKey(h))<<32 | uint64(id) }

func entryKey(e uint64) uint32 { return uint32(e >> 32) }

// home is the slot a key is placed at, or after.
func (t *indexTable) home(key uint32) int { return int(key) & (len(t.slots) - 1) }

func (t *indexTable) next(i int) int { return (i + 1) & (len(t.slots) - 1) }

func (x *seriesIndex) add(h uint64, g *group) {
	t := &x.tables[h>>56]
	if (t.n+1)*8 > len(t.slots)*7 {
		t.resize(max(minIndexTable, 2*len(t.slots)))
	}
	key := indexKey(h)
	i := t.home(key)
	found := false
	for ; t.slots[i] != 0; i = t.next(i) {
		found = found || entryKey(t.slots[i]) == key
	}
	if found {
		t.shared++
	}
	t.slots[i] = indexEntry(h, g.id)
	t.n++
}

// remove forgets one entry (h, g). The store removes only the hashes a
// group's families hold, so (h, g) was added: an entry that differs from it
// only in the hash bits the index drops is the same entry.
func (x *seriesIndex) remove(h uint64, g *group) {
	t := &x.tables[h>>56]
	if t.n == 0 {
		return
	}
	key, e := indexKey(h), indexEntry(h, g.id)
	at, found := -1, false
	// Every entry of key sits in the run of full slots from its home on.
	for i := t.home(key); t.slots[i] != 0; i = t.next(i) {
		switch {
		case at < 0 && t.slots[i] == e:
			at = i
		case entryKey(t.slots[i]) == key:
			found = true
		}
		if at >= 0 && (found || t.shared == 0) {
			break
		}
	}
	if at < 0 {
		return
	}
	if found {
		t.shared--
	}
	t.deleteAt(at)
	t.n--
	if len(t.slots) > minIndexTable && t.n*8 <= len(t.slots) {
		t.resize(len(t.slots) / 2)
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

// resize rehashes t into size slots, a power of two above t.n.
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

// unshared reports whether no two entries of h's table share a key.
func (x *seriesIndex) unshared(h uint64) bool { return x.tables[h>>56].shared == 0 }

// each calls fn for every group with an entry of h's shard and key, until
// fn returns false. Such a group may hold another series whose hash shares
// those 40 bits: fn confirms.
func (x *seriesIndex) each(h uint64, fn func(*group) bool) {
	t := &x.tables[h>>56]
	if t.n == 0 {
		return
	}
	key := indexKey(h)
	for i := t.home(key); t.slots[i] != 0; i = t.next(i) {
		if e := t.slots[i]; entryKey(e) == key && !fn(x.groups[uint32(e)-1]) { //nolint:gosec // the id is the low half
			return
		}
	}
}
