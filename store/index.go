package store

import (
	"math"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// group is one grouping key's families. Its fields are guarded by Store.mu.
type group struct {
	key GroupKey
	// slots holds a slot per family name, sorted by name (slot finds
	// one). A group has a handful of families: a sorted slice of
	// pointers costs a quarter of a map's memory or less, and is searched
	// as fast.
	slots   []*slot
	series  int // sample lines of its families (family.samples)
	version uint64
	// replaced is the version of the last write that set the group's
	// pushed families as a whole (a PUT, Restore, a received hand-off); 0
	// if none did. A hand-off copy older than it has nothing to add.
	replaced uint64
	deadline time.Time // TTL deadline, wall clock only; zero: never expires
	// exposeGen is the generation exposed holds the Exposure's answer
	// for, plus one (0: not asked yet).
	exposeGen uint64
	// shape is the shape of the group's last push while ApplyRepeat may
	// repeat it (repeat.go); nil after any other write (commit).
	shape *repeatShape
	id    uint32 // in Store.series; 0 once removed
	// expiryPos is 1 + the group's index in Store.expiries, 0 while it has
	// no deadline. Four bytes, beside id: a peer holds far fewer than 2^31
	// groups (each costs hundreds of bytes), and eight would take the
	// group past 128 bytes.
	expiryPos int32
	// The flags come last, together: the value is 128 bytes, a size
	// class of its own, where spread out they made it 144.
	//
	// failureOnly: the group exists only because pushes to it were
	// refused. Such groups count against Config.MaxFailureGroups instead
	// of MaxGroups, so refusals cannot lock valid pushers out.
	failureOnly bool
	// exposed caches the Exposure's answer for the group (exposeGen).
	exposed bool
	// split: a gzipped scrape may end a chunk after this group (gzip.go).
	split bool
}

// slot returns g's slot of family name, or nil.
func (g *group) slot(name string) *slot {
	if i, ok := findSlot(g.slots, name); ok {
		return g.slots[i]
	}
	return nil
}

// findSlot returns where the slot of family name is, or would be, in
// slots, sorted by name, and whether it is there.
func findSlot(slots []*slot, name string) (int, bool) {
	return slices.BinarySearchFunc(slots, name, func(sl *slot, name string) int { return strings.Compare(sl.fam.name, name) })
}

// sortSlots sorts slots by family name.
func sortSlots(slots []*slot) {
	slices.SortFunc(slots, func(a, b *slot) int { return strings.Compare(a.fam.name, b.fam.name) })
}

// slot is the place of one family name in one group. The name index lists
// slots, so a write that replaces a family only swaps slot.fam; membership
// (and the sorted member list a scrape walks) changes only when a group
// gains or loses a family name.
type slot struct {
	g   *group
	fam *family
	// member is what a gzipped text scrape reads of fam and g, copied here
	// so that a scrape whose chunks are kept reads the slots and not the
	// families and groups behind them (each another wait for memory).
	// With it a slot is 32 bytes.
	member
}

// member is what a scrape's view holds of a stored family besides the
// family itself (expose.go), in 16 bytes.
type member struct {
	id uint64 // fam.id
	// size is fam.textSize(), or maxMemberSize for that or more: the
	// scrape then reads the length from the family.
	size  uint32
	split bool // g.split
	utf8  bool // fam.utf8
	dead  bool // the group no longer has this family; lazily removed from nameEntry.slots
}

const maxMemberSize = math.MaxUint32

// setFam makes f the slot's family.
func (sl *slot) setFam(f *family) {
	sl.fam = f
	sl.id, sl.size, sl.utf8 = f.id, uint32(min(f.textSize(), maxMemberSize)), f.utf8() //nolint:gosec // bounded by min
}

// nameEntry indexes one family name across groups.
type nameEntry struct {
	name string // interned: every family of this name shares the string
	// help is the HELP of the family last set under the name: families
	// with the same HELP share its string (internHelp).
	help string
	// typ is the type every live member has. The checks keep it so; only a
	// family alone under its name may change type.
	typ  dto.MetricType
	live int // members that are not dead
	// slots lists the members, sorted by group key unless dirty. Dead slots
	// are compacted away by the next scrape, or on removal once they
	// outnumber the live ones.
	slots []*slot
	dirty bool
}

// sorted returns the live members in group-key order, rebuilding the list
// when membership changed since the last call.
func (e *nameEntry) sorted() []*slot {
	if e.dirty {
		e.compact()
		slices.SortFunc(e.slots, func(a, b *slot) int {
			return strings.Compare(a.g.key.String(), b.g.key.String())
		})
		e.dirty = false
	}
	return e.slots
}

// compact drops dead slots, keeping the order.
func (e *nameEntry) compact() {
	e.slots = slices.DeleteFunc(e.slots, func(sl *slot) bool { return sl.dead })
}

// change is one write to one group, checked and then committed under
// Store.mu: the new family values and which old ones disappear.
type change struct {
	key  GroupKey
	g    *group   // the group as stored, nil if it does not exist yet
	news []*built // sorted by name, names unique
	drop dropMode
	// failureOnly marks a change that holds no pushed data: the failure
	// time of a refused push, or a restored group that never had a
	// successful push. A group such changes create is failure-only.
	failureOnly bool
}

// dropMode says which of the group's families a change removes besides the
// ones it replaces.
type dropMode int

const (
	dropNone   dropMode = iota // POST, failure time: only replaced families change
	dropPushed                 // PUT: all but push_time_seconds and push_failure_time_seconds
	dropAll                    // Restore: the group is replaced as a whole
)

// lookup returns the new family called name, or nil.
func (c *change) lookup(name string) *built {
	i, ok := slices.BinarySearchFunc(c.news, name, func(b *built, n string) int { return strings.Compare(b.name, n) })
	if !ok {
		return nil
	}
	return c.news[i]
}

// drops reports whether the group's family name, if it is not replaced,
// disappears with c.
func (c *change) drops(name string) bool {
	switch c.drop {
	case dropAll:
		return true
	case dropPushed:
		return name != PushTimeName && name != PushFailureTimeName
	}
	return false
}

// mine returns 1 if c's group has a family name, else 0.
func (c *change) mine(name string) int {
	if c.g != nil && c.g.slot(name) != nil {
		return 1
	}
	return 0
}

// sortBuilt sorts families by name.
func sortBuilt(bs []*built) {
	slices.SortFunc(bs, func(a, b *built) int { return strings.Compare(a.name, b.name) })
}

// internHelp makes f share e's HELP string when they are equal: a fleet
// pushes the same HELP for a family from every group, and one copy is
// enough. Otherwise f's HELP becomes the one shared next.
func (e *nameEntry) internHelp(f *family) {
	if f.help == e.help {
		f.help = e.help
	} else {
		e.help = f.help
	}
}

// setFamily stores f as g's family of its name, replacing the old one, and
// keeps the indexes in step. The caller holds s.mu and has checked f. Only
// the first sorted slots of g are searched for f's name; a new slot is
// appended after the others, and setFamily reports that the caller must
// sort g.slots again (commit does, once per write).
func (s *Store) setFamily(g *group, sorted int, f *family) (added bool) {
	if i, ok := findSlot(g.slots[:sorted], f.name); ok {
		sl := g.slots[i]
		e := s.names[f.name]
		f.name = e.name
		e.internHelp(f)
		s.reindexSeries(g, sl.fam.seriesHashes(), f.seriesHashes())
		s.nSeries += int(f.samples) - int(sl.fam.samples)
		s.nBytes += int64(f.textSize() - sl.fam.textSize())
		g.series += int(f.samples) - int(sl.fam.samples)
		if sl.fam != f {
			s.cache.release(sl.fam)
		}
		sl.setFam(f)
		e.typ = f.typ()
		return false
	}
	e := s.names[f.name]
	if e == nil {
		e = &nameEntry{name: f.name}
		s.names[f.name] = e
		s.namesDirty = true
		if !legacyName(f.name) {
			for _, sch := range guardedSchemes {
				s.escapedNames[escapedKey{sch, escapeName(f.name, sch)}] = f.name
			}
		}
	}
	f.name = e.name
	e.internHelp(f)
	e.typ = f.typ()
	sl := &slot{g: g}
	sl.setFam(f)
	sl.split = g.split
	e.slots = append(e.slots, sl)
	e.live++
	e.dirty = true
	s.nFamilies++
	g.slots = append(g.slots, sl)
	s.indexSeries(g, f)
	return true
}

// dropSlot removes the family of sl, one of g's slots, from the store and
// keeps the indexes in step; the caller takes sl out of g.slots. The
// caller holds s.mu.
func (s *Store) dropSlot(g *group, sl *slot) {
	name := sl.fam.name
	s.forgetSeries(g, sl.fam)
	s.cache.release(sl.fam)
	s.nFamilies--
	sl.dead = true
	e := s.names[name]
	e.live--
	if e.live == 0 {
		delete(s.names, name)
		s.namesDirty = true
		if !legacyName(name) {
			for _, sch := range guardedSchemes {
				delete(s.escapedNames, escapedKey{sch, escapeName(name, sch)})
			}
		}
		return
	}
	// The next scrape must not see the dead slot. Compacting now as well
	// once dead slots outnumber live ones bounds the list when nobody
	// scrapes.
	e.dirty = true
	if len(e.slots) > 2*e.live {
		e.compact()
	}
}

func (s *Store) indexSeries(g *group, f *family) {
	for _, h := range f.seriesHashes() {
		s.series.add(h, g)
	}
	s.nSeries += int(f.samples)
	s.nBytes += int64(f.textSize())
	g.series += int(f.samples)
}

func (s *Store) forgetSeries(g *group, f *family) {
	for _, h := range f.seriesHashes() {
		s.series.remove(h, g)
	}
	s.nSeries -= int(f.samples)
	s.nBytes -= int64(f.textSize())
	g.series -= int(f.samples)
}

// reindexSeries moves g's index entries from the sorted hashes old to the
// sorted hashes new. A push usually repeats the series it replaces, so only
// the difference touches the index.
func (s *Store) reindexSeries(g *group, old, new []uint64) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && old[i] < new[j]):
			s.series.remove(old[i], g)
			i++
		case i == len(old) || new[j] < old[i]:
			s.series.add(new[j], g)
			j++
		default:
			i++
			j++
		}
	}
}
