package store

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Hand-off moves a group from its previous owner to its new one when the
// cluster changes (DESIGN.md decision 6). The sender lists its groups
// (Keys), copies the ones it no longer owns (Group), and once the receiver
// stored them removes its copy if nothing wrote it meanwhile
// (DeleteVersion). The receiver keeps whichever copy is newer by version
// (Receive): a push that reached the new owner first wins over the old
// owner's copy, and a delete leaves a tombstone so that the old copy does
// not come back.

// Keys returns the keys of every group, in no particular order.
func (s *Store) Keys() []GroupKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]GroupKey, 0, len(s.groups))
	for k := range s.groups {
		keys = append(keys, k)
	}
	return keys
}

// DeleteVersion removes group k if its version is still v, and reports
// whether it did. A hand-off sender calls it once the new owner has the
// group: a write that came in meanwhile has a newer version and keeps the
// group here until the next hand-off. It leaves no tombstone (the group
// moved; it was not deleted) and does not count as an expiry.
func (s *Store) DeleteVersion(k GroupKey, v uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[k]
	if g == nil || g.version != v {
		return false
	}
	s.removeGroupLocked(g)
	s.changedLocked()
	return true
}

// Receive stores a group handed over by its previous owner unless this
// store holds a newer write of it: the group at a version at least as
// high, or a delete of it at a higher version (within Config.TombstoneTTL).
// It reports whether it stored the group; a stale group is not an error,
// and neither is a group whose deadline has passed (it is counted as
// expired and not stored). Otherwise it checks the group as Restore does and
// returns its error: ErrLimit or ErrInconsistent.
func (s *Store) Receive(gs GroupSnapshot) (bool, error) {
	if gs.Key.IsZero() {
		return false, ErrInvalidKey
	}
	if s.staleReceive(gs.Key, gs.Version) {
		return false, nil
	}
	if !gs.Deadline.IsZero() && !gs.Deadline.After(s.clock.Now()) {
		s.metrics.expired.Inc()
		return false, nil
	}
	news, err := s.buildRestore(gs)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.staleLocked(gs.Key, gs.Version) { // a write may have come in while building
		return false, nil
	}
	c := &change{key: gs.Key, g: s.groups[gs.Key], news: news, drop: dropAll}
	if reason, err := s.checkLimits(c); err != nil {
		s.metrics.rejected.WithLabelValues(reason).Inc()
		return false, err
	}
	if probs := s.check(c); len(probs.errs) > 0 {
		s.metrics.rejected.WithLabelValues(probs.reason()).Inc()
		return false, probs.err()
	}
	g := s.commit(c)
	g.version = gs.Version
	s.version = max(s.version, gs.Version)
	s.setDeadlineLocked(g, gs.Deadline)
	s.tombs.forget(gs.Key)
	s.changedLocked()
	return true, nil
}

// ReceiveDelete applies a delete of group k at version v that another peer
// saw: the group goes if its version is older, and the tombstone stays
// either way. It reports whether a group was removed.
func (s *Store) ReceiveDelete(k GroupKey, v uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.staleLocked(k, v) {
		return false
	}
	s.version = max(s.version, v)
	s.tombs.add(k, v, s.clock.Now(), s.cfg.TombstoneTTL, s.cfg.MaxGroups)
	g := s.groups[k]
	if g == nil {
		return false
	}
	s.removeGroupLocked(g)
	s.changedLocked()
	return true
}

func (s *Store) staleReceive(k GroupKey, v uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.staleLocked(k, v)
}

// staleLocked reports whether this store has a write of k newer than
// version v: the group at version v or later, or a tombstone after v. The
// caller holds s.mu.
func (s *Store) staleLocked(k GroupKey, v uint64) bool {
	if g := s.groups[k]; g != nil && g.version >= v {
		return true
	}
	tv, ok := s.tombs.version(k, s.clock.Now(), s.cfg.TombstoneTTL)
	return ok && tv >= v
}

// tombstones remembers the versions of deleted groups for a while. Entries
// sit in a queue in the order they were added; expired ones are dropped
// from its front as new ones come, and the queue never holds more than a
// cap (the group limit), so a flood of deletes cannot grow it without
// bound. The zero value is empty and keeps nothing until add is given a
// positive TTL. The store's mutex guards it.
type tombstones struct {
	byKey map[GroupKey]tombstone
	queue []queuedTomb // oldest first from head
	head  int
}

type tombstone struct {
	version uint64
	at      time.Time
}

type queuedTomb struct {
	key GroupKey
	at  time.Time
}

// add records a delete of k at version v, made at now. A zero ttl keeps
// nothing; limit > 0 caps the entries, dropping the oldest.
func (t *tombstones) add(k GroupKey, v uint64, now time.Time, ttl time.Duration, limit int) {
	if ttl <= 0 {
		return
	}
	if t.byKey == nil {
		t.byKey = map[GroupKey]tombstone{}
	}
	t.prune(now, ttl, limit)
	t.byKey[k] = tombstone{version: v, at: now}
	t.queue = append(t.queue, queuedTomb{key: k, at: now})
}

// prune drops entries older than ttl, and the oldest beyond limit - 1 so
// that one more fits. The queue's front advances; its storage is compacted
// once half of it is dead, so each entry is copied O(1) times.
func (t *tombstones) prune(now time.Time, ttl time.Duration, limit int) {
	for ; t.head < len(t.queue); t.head++ {
		q := t.queue[t.head]
		over := limit > 0 && len(t.queue)-t.head >= limit
		if !over && now.Sub(q.at) < ttl {
			break
		}
		// A key deleted again later has a newer entry; only the entry
		// this queue slot made goes.
		if e, ok := t.byKey[q.key]; ok && e.at.Equal(q.at) {
			delete(t.byKey, q.key)
		}
	}
	if t.head > 0 && t.head >= len(t.queue)/2 {
		t.queue = slices.Delete(t.queue, 0, t.head)
		t.head = 0
	}
}

// version returns the version of k's tombstone if it is younger than ttl.
func (t *tombstones) version(k GroupKey, now time.Time, ttl time.Duration) (uint64, bool) {
	e, ok := t.byKey[k]
	if !ok || now.Sub(e.at) >= ttl {
		return 0, false
	}
	return e.version, true
}

// forget drops k's tombstone: a newer copy of the group is stored.
func (t *tombstones) forget(k GroupKey) { delete(t.byKey, k) }

// len returns the number of live entries, for tests.
func (t *tombstones) len() int { return len(t.byKey) }

// String describes a group for hand-off logs.
func (gs GroupSnapshot) String() string {
	return fmt.Sprintf("%s@%d", strings.ReplaceAll(formatKey(gs.Key), "\n", " "), gs.Version)
}
