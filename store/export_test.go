package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	dto "github.com/prometheus/client_model/go"
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
		case g.expiryPos < 1 || g.expiryPos > len(s.expiries) || s.expiries[g.expiryPos-1] != g:
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
		for name, sl := range g.families {
			if sl.g != g || sl.dead || sl.fam.name != name {
				return fmt.Errorf("slot of %q in %s is broken", name, formatKey(k))
			}
			// The text's sample lines: what Prometheus counts as series.
			inGroup += bytes.Count(sl.fam.text(), []byte{'\n'})
			nBytes += int64(len(sl.fam.data))
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
	want := map[uint64][]*group{}
	for _, g := range s.groups {
		for _, sl := range g.families {
			for _, h := range sl.fam.hashes {
				want[h] = append(want[h], g)
			}
		}
	}
	got := map[uint64][]*group{}
	for h, g := range s.series.owner {
		got[h] = append([]*group{g}, s.series.overflow[h]...)
	}
	for h := range s.series.overflow {
		if _, ok := s.series.owner[h]; !ok {
			return fmt.Errorf("overflow entry for %x without an owner", h)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("series index has %d hashes, groups have %d", len(got), len(want))
	}
	byKey := func(a, b *group) int { return strings.Compare(a.key.String(), b.key.String()) }
	for h, w := range want {
		g := got[h]
		slices.SortFunc(w, byKey)
		slices.SortFunc(g, byKey)
		if !slices.Equal(w, g) {
			return fmt.Errorf("series %x: index has %d owners, groups %d", h, len(g), len(w))
		}
	}
	return nil
}

func (s *Store) checkNames() error {
	members := map[string]int{}
	for _, g := range s.groups {
		for name, sl := range g.families {
			members[name]++
			e := s.names[name]
			if e == nil {
				return fmt.Errorf("family %q of %s has no name entry", name, formatKey(g.key))
			}
			if e.typ != sl.fam.typ {
				return fmt.Errorf("family %q of %s is a %s, the entry says %s", name, formatKey(g.key), sl.fam.typ, e.typ)
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
		for _, sl := range g.families {
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
