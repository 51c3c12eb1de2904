package store

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Hand-off moves a group from its previous owner to its new one when the
// cluster changes (docs/design.md, "Hand-off"). The sender lists its groups
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

// Receive stores a group handed over by its previous owner. If this store
// has no newer write of it, the copy replaces the group whole. If it has
// (a push reached the new owner first), the copy is merged in as far as
// nothing newer superseded it: families the stored group lacks are added
// (a POST here must not drop what earlier pushes stored there), and each
// push-time gauge keeps the later time; a PUT or a delete here at a higher
// version than the copy supersedes it all. It reports whether the store
// changed; a stale copy is not an error, and neither is a group whose
// deadline has passed (it is counted as expired and not stored). Otherwise
// it checks the group as Restore does and returns its error: ErrLimit or
// ErrInconsistent.
func (s *Store) Receive(gs GroupSnapshot) (bool, error) {
	if gs.Key.IsZero() {
		return false, ErrInvalidKey
	}
	if s.staleReceive(gs.Key, gs.Version) {
		return s.mergeStale(gs)
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
	if s.staleLocked(gs.Key, gs.Version) { // a write came in while building
		s.mu.Unlock()
		return s.mergeStale(gs)
	}
	defer s.mu.Unlock()
	c := &change{key: gs.Key, g: s.groups[gs.Key], news: news, drop: dropAll}
	if reason, err := s.checkLimits(c); err != nil {
		return false, rejected(reason, err)
	}
	if probs := s.check(c); len(probs.errs) > 0 {
		return false, rejected(probs.reason(), probs.err())
	}
	g := s.commit(c)
	g.version, g.replaced = gs.Version, gs.Version
	s.version = max(s.version, gs.Version)
	s.setDeadlineLocked(g, gs.Deadline)
	s.tombs.forget(gs.Key)
	s.changedLocked()
	return true, nil
}

// mergeAttempts bounds the retries of mergeStale when writes to the same
// group keep coming in while it builds.
const mergeAttempts = 3

// mergeStale merges an older copy of a group into the stored one: see
// Receive. It reports whether the store changed.
func (s *Store) mergeStale(gs GroupSnapshot) (bool, error) {
	for range mergeAttempts {
		s.mu.Lock()
		g := s.groups[gs.Key]
		floor := uint64(0)
		if g != nil {
			floor = g.replaced
		}
		if tv, ok := s.tombs.version(gs.Key, s.clock.Now(), s.cfg.TombstoneTTL); ok {
			floor = max(floor, tv)
		}
		if g == nil || gs.Version <= floor {
			s.mu.Unlock()
			return false, nil // superseded whole, or deleted
		}
		ref, version := refOf(g), g.version
		s.mu.Unlock()

		local := s.decodeGroup(ref)
		missing := missingFamilies(local, gs)
		if len(missing.Families) == 0 {
			return false, nil
		}
		news, err := s.buildRestore(missing)
		if err != nil {
			return false, err
		}
		s.mu.Lock()
		if s.groups[gs.Key] != g || g.version != version {
			s.mu.Unlock()
			continue // written meanwhile: merge into the new state
		}
		c := &change{key: gs.Key, g: g, news: news, drop: dropNone}
		if reason, err := s.checkLimits(c); err != nil {
			s.mu.Unlock()
			return false, rejected(reason, err)
		}
		if probs := s.check(c); len(probs.errs) > 0 {
			s.mu.Unlock()
			return false, rejected(probs.reason(), probs.err())
		}
		s.commit(c)
		g.version = s.nextVersion()
		s.version = max(s.version, gs.Version)
		s.changedLocked()
		s.mu.Unlock()
		return true, nil
	}
	return false, fmt.Errorf("group %s kept changing while an older copy was merged in; try again", formatKey(gs.Key))
}

// missingFamilies returns what the older copy old adds to the newer group
// cur: the families cur lacks, and each push-time gauge of old that is later
// than cur's.
func missingFamilies(cur, old GroupSnapshot) GroupSnapshot {
	have := make(map[string]bool, len(cur.Families))
	for _, f := range cur.Families {
		have[f.Family.GetName()] = true
	}
	out := GroupSnapshot{Key: old.Key}
	for _, f := range old.Families {
		switch name := f.Family.GetName(); name {
		case PushTimeName, PushFailureTimeName:
			ov, ok := old.TimeGauge(name)
			cv, cok := cur.TimeGauge(name)
			if ok && (!cok || ov > cv) {
				out.Families = append(out.Families, f)
			}
		default:
			if !have[name] {
				out.Families = append(out.Families, f)
			}
		}
	}
	return out
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
	return s.deleteLocked(k, v)
}

// Tombstone is a remembered delete of a group.
type Tombstone struct {
	Key     GroupKey
	Version uint64
}

// Tombstones returns the deletes this store remembers (within
// Config.TombstoneTTL), in no particular order. Hand-off sends those of
// groups another peer owns to that peer, so that a copy it still holds from
// before the delete goes too.
func (s *Store) Tombstones() []Tombstone {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	out := make([]Tombstone, 0, len(s.tombs.byKey))
	for k, e := range s.tombs.byKey {
		if now.Sub(e.at) < s.cfg.TombstoneTTL {
			out = append(out, Tombstone{Key: k, Version: e.version})
		}
	}
	return out
}

// ForgetTombstone drops k's tombstone if it is still the delete at version
// v: its owner has it now.
func (s *Store) ForgetTombstone(k GroupKey, v uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.tombs.byKey[k]; ok && e.version == v {
		s.tombs.forget(k)
	}
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

// String describes a group for hand-off logs.
func (gs GroupSnapshot) String() string {
	return fmt.Sprintf("%s@%d", strings.ReplaceAll(formatKey(gs.Key), "\n", " "), gs.Version)
}
