package store

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

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

// exposer answers, for one read of the store, which groups it shows: the
// Exposure and its generation, read once.
type exposer struct {
	e   Exposure // nil: every group
	gen uint64   // the Exposure's generation + 1 (0 in a group: never asked)
}

func (s *Store) exposer() exposer {
	p := s.exposure.e.Load()
	if p == nil {
		return exposer{}
	}
	return exposer{e: *p, gen: (*p).Generation() + 1}
}

// exposes reports whether g is exposed, caching the answer in g per
// generation. The caller holds s.mu.
func (x exposer) exposes(g *group) bool {
	if x.e == nil {
		return true
	}
	if g.exposeGen != x.gen {
		g.exposed, g.exposeGen = x.e.Exposes(g.key.Hash()), x.gen
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

// WireFamily is one family of a WireGroup: its name, the time of the push
// that last wrote it, and its protobuf MetricFamily encoding.
type WireFamily struct {
	Name         string
	Time         time.Time
	MetricFamily []byte
}

// WireGroup is a group as the peer protocol carries it, encoded without
// decoding the stored families first: the replica writes, hand-offs and
// repairs copy groups this way.
type WireGroup struct {
	Key      GroupKey
	Version  uint64
	Deadline time.Time
	Families []WireFamily // sorted by name
}

// GroupWire returns group k encoded for the peer protocol, and whether it
// exists. Like Group it holds the lock only to copy out references.
func (s *Store) GroupWire(k GroupKey) (WireGroup, bool) {
	s.mu.Lock()
	g := s.groups[k]
	var r groupRef
	if g != nil {
		r = refOf(g)
	}
	s.mu.Unlock()
	if g == nil {
		return WireGroup{}, false
	}
	slices.SortFunc(r.fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	wg := WireGroup{Key: r.key, Version: r.version, Deadline: r.deadline, Families: make([]WireFamily, 0, len(r.fams))}
	var sc textScratch
	for _, f := range r.fams {
		b, err := f.appendFileProtobuf(nil, &sc)
		if err != nil {
			s.logger.Error("stored family does not encode", "group", formatKey(r.key), "err", err)
			continue
		}
		wg.Families = append(wg.Families, WireFamily{Name: f.name, Time: f.pushTime(), MetricFamily: b})
	}
	return wg, true
}
