package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// CheckInvariants recomputes every index from the groups and compares: the
// series multiset, the per-name entries (members, types, counts), the
// counters, and that no two groups hold the same series. Tests call it
// after writes; it is O(store) and decodes everything.
func (s *Store) CheckInvariants() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkCounts(); err != nil {
		return err
	}
	if err := s.checkSeriesIndex(); err != nil {
		return err
	}
	if err := s.checkNames(); err != nil {
		return err
	}
	if err := s.checkExpiries(); err != nil {
		return err
	}
	if err := s.checkEscapedNames(); err != nil {
		return err
	}
	return s.checkNoDuplicates()
}

// checkEscapedNames checks that escapedNames maps exactly the non-legacy
// family names, each from its own escaped form.
func (s *Store) checkEscapedNames() error {
	n := 0
	for name := range s.names {
		if legacyName(name) {
			continue
		}
		for _, sch := range guardedSchemes {
			n++
			if got := s.escapedNames[escapedKey{sch, escapeName(name, sch)}]; got != name {
				return fmt.Errorf("%s form of %q maps to %q", sch, name, got)
			}
		}
	}
	if n != len(s.escapedNames) {
		return fmt.Errorf("%d escaped forms of UTF-8 family names, %d in the index", n, len(s.escapedNames))
	}
	return nil
}

// checkExpiries checks the expiry heap: exactly the stored groups with a
// deadline, each at the position it believes, in heap order.
func (s *Store) checkExpiries() error {
	withDeadline := 0
	for _, g := range s.groups {
		switch {
		case g.deadline.IsZero() && g.expiryPos != 0:
			return fmt.Errorf("group %s without deadline is queued at %d", formatKey(g.key), g.expiryPos)
		case g.deadline.IsZero():
			continue
		case g.expiryPos < 1 || int(g.expiryPos) > len(s.expiries) || s.expiries[g.expiryPos-1] != g:
			return fmt.Errorf("group %s with deadline %v is not queued where it says (%d)", formatKey(g.key), g.deadline, g.expiryPos)
		}
		withDeadline++
	}
	if withDeadline != len(s.expiries) {
		return fmt.Errorf("%d groups have a deadline, %d are queued", withDeadline, len(s.expiries))
	}
	for i := 1; i < len(s.expiries); i++ {
		if s.expiries.less(i, (i-1)/2) {
			return fmt.Errorf("expiry heap out of order at %d", i)
		}
	}
	return nil
}

// ExpiryQueueLen returns the number of entries of the expiry heap.
func (s *Store) ExpiryQueueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.expiries)
}

func (s *Store) checkCounts() error {
	series, fams, failureOnly, nBytes := 0, 0, 0, int64(0)
	for k, g := range s.groups {
		if g.failureOnly {
			failureOnly++
		}
		if g.key != k {
			return fmt.Errorf("group stored under %s has key %s", formatKey(k), formatKey(g.key))
		}
		inGroup := 0
		for i, sl := range g.slots {
			name := sl.fam.name
			if sl.g != g || sl.dead {
				return fmt.Errorf("slot of %q in %s is broken", name, formatKey(k))
			}
			if i > 0 && g.slots[i-1].fam.name >= name {
				return fmt.Errorf("slots of %s are not sorted by name, without repeats: %q before %q", formatKey(k), g.slots[i-1].fam.name, name)
			}
			if g.slot(name) != sl {
				return fmt.Errorf("slot of %q in %s is not found by name", name, formatKey(k))
			}
			// The text's sample lines: what Prometheus counts as series.
			text := textOf(sl.fam)
			inGroup += bytes.Count(text, []byte{'\n'})
			if len(text) != sl.fam.textSize() || int(sl.fam.samples) != bytes.Count(text, []byte{'\n'}) {
				return fmt.Errorf("family %q of %s has %d bytes in %d lines, says %d in %d", name, formatKey(k), len(text), bytes.Count(text, []byte{'\n'}), sl.fam.textSize(), sl.fam.samples)
			}
			nBytes += int64(sl.fam.textSize())
			fams++
		}
		if inGroup != g.series {
			return fmt.Errorf("group %s has %d series, says %d", formatKey(k), inGroup, g.series)
		}
		series += inGroup
	}
	if nBytes != s.nBytes {
		return fmt.Errorf("counted %d sample bytes, store says %d", nBytes, s.nBytes)
	}
	if failureOnly != s.nFailureOnly {
		return fmt.Errorf("counted %d failure-only groups, store says %d", failureOnly, s.nFailureOnly)
	}
	if series != s.nSeries || fams != s.nFamilies {
		return fmt.Errorf("counted %d series in %d families, store says %d in %d", series, fams, s.nSeries, s.nFamilies)
	}
	return nil
}

func (s *Store) checkSeriesIndex() error {
	want := map[indexed]int{}
	for _, g := range s.groups {
		if g.id == 0 || int(g.id) > len(s.series.groups) || s.series.groups[g.id-1] != g {
			return fmt.Errorf("group %s has id %d, which the index does not give it", formatKey(g.key), g.id)
		}
		for _, sl := range g.slots {
			for _, h := range sl.fam.seriesHashes() {
				want[s.series.indexedOf(h, g)]++
			}
		}
	}
	if ids := len(s.series.groups) - len(s.series.free); ids != len(s.groups) {
		return fmt.Errorf("index has %d group ids in use, the store %d groups", ids, len(s.groups))
	}
	got, err := s.series.entries()
	if err != nil {
		return err
	}
	if !maps.Equal(got, want) {
		return fmt.Errorf("series index holds %d distinct entries, the groups' families %d", len(got), len(want))
	}
	return nil
}

// indexed is what the series index keeps of an entry (h, g).
type indexed struct {
	shard int
	key   uint32
	g     *group
}

func (x *seriesIndex) indexedOf(h uint64, g *group) indexed {
	m := x.mix(h)
	return indexed{int(m >> 56), indexKey(m), g}
}

// entries returns the index's entries, counted, after checking that each
// is found from its home, names a group in use, and that every table
// counts its entries and shared keys right.
func (x *seriesIndex) entries() (map[indexed]int, error) {
	got := map[indexed]int{}
	for shard := range x.tables {
		t := &x.tables[shard]
		if len(t.slots) == 0 {
			if t.n != 0 || len(t.shared) != 0 {
				return nil, fmt.Errorf("table %d: no slots, but counts %d entries", shard, t.n)
			}
			continue
		}
		n, keys := 0, map[uint32]int{}
		// Walk the table from an empty slot: an entry is found from its
		// home if no empty slot lies between the two.
		size := len(t.slots)
		empty := slices.Index(t.slots, 0)
		if empty < 0 {
			return nil, fmt.Errorf("table %d: no empty slot", shard)
		}
		off := func(i int) int { return (i - empty + size) % size }
		run := 0 // offset of the first slot of the current run
		for o := 1; o < size; o++ {
			i := (empty + o) % size
			e := t.slots[i]
			if e == 0 {
				run = o + 1
				continue
			}
			n++
			keys[entryKey(e)]++
			if k := off(t.home(entryKey(e))); k < run || k > o {
				return nil, fmt.Errorf("table %d: the entry at %d is not reachable from its home", shard, i)
			}
			id := uint32(e)
			if id == 0 || int(id) > len(x.groups) || x.groups[id-1] == nil {
				return nil, fmt.Errorf("table %d: entry at %d names group id %d, which is not in use", shard, i, id)
			}
			got[indexed{shard, entryKey(e), x.groups[id-1]}]++
		}
		shared := map[uint32]int{}
		for k, c := range keys {
			if c > 1 {
				shared[k] = c - 1
			}
		}
		if n != t.n || !maps.Equal(shared, t.shared) {
			return nil, fmt.Errorf("table %d: holds %d entries, shared keys %v; counted %d and %v", shard, n, shared, t.n, t.shared)
		}
		// At most 3/4 full, and at least 1/8 unless at its smallest: a
		// table shrinks as it empties.
		if size < minIndexTable || n*4 > size*3 || (size > minIndexTable && n*8 < size) {
			return nil, fmt.Errorf("table %d: %d entries in %d slots", shard, n, size)
		}
	}
	return got, nil
}

func (s *Store) checkNames() error {
	members := map[string]int{}
	for _, g := range s.groups {
		for _, sl := range g.slots {
			name := sl.fam.name
			members[name]++
			e := s.names[name]
			if e == nil {
				return fmt.Errorf("family %q of %s has no name entry", name, formatKey(g.key))
			}
			if e.typ != sl.fam.typ() {
				return fmt.Errorf("family %q of %s is a %s, the entry says %s", name, formatKey(g.key), sl.fam.typ(), e.typ)
			}
			if !slices.Contains(e.slots, sl) {
				return fmt.Errorf("slot of %q in %s is not listed", name, formatKey(g.key))
			}
		}
	}
	if len(members) != len(s.names) {
		return fmt.Errorf("%d names in groups, %d entries", len(members), len(s.names))
	}
	for name, e := range s.names {
		live := 0
		for _, sl := range e.slots {
			if !sl.dead {
				live++
			}
		}
		if e.live != members[name] || live != e.live || e.name != name {
			return fmt.Errorf("entry %q: live %d, listed %d, groups %d", name, e.live, live, members[name])
		}
	}
	if !s.namesDirty && len(s.sortedNames) != len(s.names) && s.sortedNames != nil {
		return fmt.Errorf("sorted name list has %d names, index %d", len(s.sortedNames), len(s.names))
	}
	return nil
}

func (s *Store) checkNoDuplicates() error {
	seen := map[string]string{}
	for _, g := range s.groups {
		for _, sl := range g.slots {
			mf, err := sl.fam.decode()
			if err != nil {
				return err
			}
			for _, m := range mf.Metric {
				id := mf.GetName()
				for _, lp := range m.Label {
					id += "\xff" + lp.GetName() + "\xff" + lp.GetValue()
				}
				if other, dup := seen[id]; dup {
					return fmt.Errorf("series %q in %s and %s", id, other, formatKey(g.key))
				}
				seen[id] = formatKey(g.key)
			}
		}
	}
	return nil
}

// PlantCollision makes group k an owner of the series hashes of mf's
// metrics, as if k held different series with equal hashes. The returned
// function removes the planted entries again.
func (s *Store) PlantCollision(k GroupKey, mf *dto.MetricFamily) (undo func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[k]
	var hs []uint64
	for _, m := range mf.Metric {
		h := xxhash.Sum64(appendSeriesKey(nil, mf.GetName(), m.Label))
		s.series.add(h, g)
		hs = append(hs, h)
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, h := range hs {
			s.series.remove(h, g)
		}
	}
}

// TombstoneCount returns the number of remembered deletes.
func TombstoneCount(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tombs.byKey)
}

// WriteFile replaces the file at path with groups, crash-safely: the data
// goes to a temporary file in the same directory, which is synced, renamed
// over path, and the directory is synced. A crash at any point leaves either
// the old file or the new one, never a mix. The file mode is 0600 (the
// Pushgateway's).
//
// On any error the temporary file is removed and the old file is untouched.
// A group with a zero key, a duplicate key, or a nil, unnamed or duplicate
// family is an error wrapping ErrInvalidGroup and nothing is written.
//
// WriteFile does not modify groups. Store.WriteFile writes the same file
// from the store without a snapshot of it.
func WriteFile(path string, groups []GroupSnapshot) error {
	if err := checkFileGroups(groups); err != nil {
		return err
	}
	return writeFileWith(path, func(fw *fileWriter) error {
		for _, g := range groups {
			if err := fw.snapshot(g); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkFileGroups finds what would make the file unreadable or ambiguous:
// zero or duplicate keys, nil, unnamed or duplicate families.
func checkFileGroups(groups []GroupSnapshot) error {
	keys := make(map[GroupKey]struct{}, len(groups))
	for _, g := range groups {
		enc := g.Key.String()
		if g.Key.IsZero() {
			return fmt.Errorf("%w: zero grouping key", ErrInvalidGroup)
		}
		if _, dup := keys[g.Key]; dup {
			return fmt.Errorf("%w: duplicate group %q", ErrInvalidGroup, enc)
		}
		keys[g.Key] = struct{}{}
		if err := checkFileFamilies(g.Families); err != nil {
			return fmt.Errorf("%w: group %q: %w", ErrInvalidGroup, enc, err)
		}
	}
	return nil
}

func checkFileFamilies(fams []FamilySnapshot) error {
	names := make(map[string]struct{}, len(fams))
	for _, fs := range fams {
		name := fs.Family.GetName() // "" for a nil family too
		if name == "" {
			return errors.New("family without a name")
		}
		if _, dup := names[name]; dup {
			return fmt.Errorf("duplicate family %q", name)
		}
		names[name] = struct{}{}
	}
	return nil
}

// snapshot writes one group of a snapshot; WriteFile has checked it.
func (fw *fileWriter) snapshot(g GroupSnapshot) error {
	var fams []byte
	for _, fs := range g.Families {
		pb, err := proto.MarshalOptions{}.MarshalAppend(nil, fs.Family)
		if err != nil {
			return fmt.Errorf("encode family %q of group %q: %w", fs.Family.GetName(), g.Key.String(), err)
		}
		if fams, err = appendFamily(fams, fs.Family.GetName(), fs.Time, pb); err != nil {
			return fmt.Errorf("%w: group %q: %w", ErrInvalidGroup, g.Key.String(), err)
		}
	}
	return fw.entry(g.Key, g.Version, g.Deadline, fams, len(g.Families))
}

// entry writes one map entry: the encoded key and a fileGroup whose Metrics
// are fams, nFams entries already encoded.
func (fw *fileWriter) entry(key GroupKey, version uint64, deadline time.Time, fams []byte, nFams int) error {
	b, err := appendEntry(nil, key, version, deadline, fams, nFams)
	if err != nil {
		return err
	}
	return fw.writeEntries(b, 1)
}

// KeyJob is k.job, for the tests of the store package's callers.
func KeyJob(k GroupKey) string { return k.job() }

// textOf returns f's text lines, decoded if they are front-coded.
func textOf(f *family) []byte {
	var sc []byte
	return f.text(&sc)
}

// RenderCacheBytes returns what the render cache counts as kept.
func (s *Store) RenderCacheBytes() int64 { return s.cache.used.Load() }

// setPlainText makes text the family's data, not front-coded, with its
// series hashes copied just before it as the family keeps them: a test
// that breaks a stored family's text keeps the rest of it readable.
func (f *family) setPlainText(text string) {
	n := len(f.seriesHashes())
	words := make([]uint64, n+(len(text)+7)/8)
	copy(words, f.seriesHashes())
	start := (*byte)(unsafe.Pointer(&words[n]))
	copy(unsafe.Slice(start, len(text)), text)
	f.data, f.textLen = unsafe.String(start, len(text)), 0
}
