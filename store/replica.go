package store

import "sync/atomic"

// Replication keeps every group on several peers but exposes it on one
// (docs/design.md, "Replication"): the store holds the copies of every
// group this peer owns, and an Exposure says which of them it shows on
// its scrape and in its views. Hand-off, repair and persistence see every
// group held; WriteExposition and Range only the exposed ones.

// Exposure says which groups a store exposes. Its methods are safe for
// concurrent use and never block; the store calls them under its lock.
type Exposure interface {
	// Exposes reports whether groups with key hash h are exposed here.
	Exposes(h uint64) bool
	// Generation changes whenever an answer of Exposes may have changed;
	// the store keeps each group's answer until it does.
	Generation() uint64
}

// exposureBox holds a store's Exposure: nil exposes every group.
type exposureBox struct{ e atomic.Pointer[Exposure] }

// SetExposure makes the store expose only the groups e says, from the next
// scrape on; nil exposes every group (a peer that holds no copies for
// other peers). The binary sets it once, while wiring, before serving.
func (s *Store) SetExposure(e Exposure) {
	if e == nil {
		s.exposure.e.Store(nil)
		return
	}
	s.exposure.e.Store(&e)
}

// exposedLocked reports whether g is exposed, caching the answer in g per
// generation. The caller holds s.mu.
func (s *Store) exposedLocked(g *group) bool {
	p := s.exposure.e.Load()
	if p == nil {
		return true
	}
	gen := (*p).Generation() + 1 // 0 in a group means "never asked"
	if g.exposeGen != gen {
		g.exposed, g.exposeGen = (*p).Exposes(g.key.Hash()), gen
	}
	return g.exposed
}

// Entry is one group or tombstone as repair compares them: its key and
// version, and whether it is a delete.
type Entry struct {
	Key     GroupKey
	Version uint64
	Deleted bool
}

// Entries lists every group held and every tombstone remembered (within
// Config.TombstoneTTL), in no particular order. A group that has a
// tombstone too (deleted, then written again) is listed as the group.
func (s *Store) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	out := make([]Entry, 0, len(s.groups)+len(s.tombs.byKey))
	for k, g := range s.groups {
		out = append(out, Entry{Key: k, Version: g.version})
	}
	for k, t := range s.tombs.byKey {
		if s.groups[k] == nil && now.Sub(t.at) < s.cfg.TombstoneTTL {
			out = append(out, Entry{Key: k, Version: t.version, Deleted: true})
		}
	}
	return out
}

// TombstoneOf returns the version of the delete of k this store remembers,
// if it does and no newer write of k came in since.
func (s *Store) TombstoneOf(k GroupKey) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[k] != nil {
		return 0, false
	}
	return s.tombs.version(k, s.clock.Now(), s.cfg.TombstoneTTL)
}
