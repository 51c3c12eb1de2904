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
	key      GroupKey
	families map[string]*slot // by family name
	// list holds the family values of families, in no particular order.
	// Every commit replaces it and nothing changes it, so a persistence
	// write copies it out under the lock with one read of the group
	// instead of walking the map.
	list    []*family
	series  int // sample lines of its families (family.samples)
	version uint64
	// replaced is the version of the last write that set the group's
	// pushed families as a whole (a PUT, Restore, a received hand-off); 0
	// if none did. A hand-off copy older than it has nothing to add.
	replaced uint64
	deadline time.Time // TTL deadline, wall clock only; zero: never expires
	// expiryPos is 1 + the group's index in Store.expiries, 0 while it has
	// no deadline.
	expiryPos int
	// failureOnly: the group exists only because pushes to it were
	// refused. Such groups count against Config.MaxFailureGroups instead
	// of MaxGroups, so refusals cannot lock valid pushers out.
	failureOnly bool
	id          uint32 // in Store.series; 0 once removed
	// exposed caches the Exposure's answer for the group; exposeGen is the
	// generation it holds for, plus one (0: not asked yet).
	exposed   bool
	exposeGen uint64
	// split: a gzipped scrape may end a chunk after this group (gzip.go).
	split bool
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
	sl.id, sl.size, sl.utf8 = f.id, uint32(min(f.textSize(), maxMemberSize)), f.utf8 //nolint:gosec // bounded by min
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
	if c.g != nil && c.g.families[name] != nil {
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
// keeps the indexes in step. The caller holds s.mu and has checked f.
func (s *Store) setFamily(g *group, f *family) {
	if sl := g.families[f.name]; sl != nil {
		e := s.names[f.name]
		f.name = e.name
		e.internHelp(f)
		s.reindexSeries(g, sl.fam.hashes, f.hashes)
		s.nSeries += f.samples - sl.fam.samples
		s.nBytes += int64(f.textSize() - sl.fam.textSize())
		g.series += f.samples - sl.fam.samples
		if sl.fam != f {
			s.cache.release(sl.fam)
		}
		sl.setFam(f)
		e.typ = f.typ
		return
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
	e.typ = f.typ
	sl := &slot{g: g}
	sl.setFam(f)
	sl.split = g.split
	e.slots = append(e.slots, sl)
	e.live++
	e.dirty = true
	s.nFamilies++
	g.families[e.name] = sl
	s.indexSeries(g, f)
}

// dropFamily removes g's family name and keeps the indexes in step. The
// caller holds s.mu.
func (s *Store) dropFamily(g *group, name string) {
	sl := g.families[name]
	if sl == nil {
		return
	}
	s.forgetSeries(g, sl.fam)
	s.cache.release(sl.fam)
	delete(g.families, name)
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
	for _, h := range f.hashes {
		s.series.add(h, g)
	}
	s.nSeries += f.samples
	s.nBytes += int64(f.textSize())
	g.series += f.samples
}

func (s *Store) forgetSeries(g *group, f *family) {
	for _, h := range f.hashes {
		s.series.remove(h, g)
	}
	s.nSeries -= f.samples
	s.nBytes -= int64(f.textSize())
	g.series -= f.samples
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
