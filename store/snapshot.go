package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// FamilySnapshot is one family of a group and the time of the push that last
// wrote it.
type FamilySnapshot struct {
	Family *dto.MetricFamily
	Time   time.Time
}

// GroupSnapshot is a deep copy of one group: the caller owns it.
type GroupSnapshot struct {
	Key      GroupKey
	Families []FamilySnapshot // sorted by name; includes push_time_seconds and push_failure_time_seconds
	Version  uint64
	// Deadline is when the group expires (its last successful push plus
	// its TTL); zero: never.
	Deadline time.Time
}

// LastPushSuccessful reports push_failure_time_seconds <= push_time_seconds
// (true when either is missing), as the Pushgateway's JSON API does. Each
// gauge's value is that of its first metric; a family without metrics counts
// as missing.
func (g GroupSnapshot) LastPushSuccessful() bool {
	failed, ok := g.TimeGauge(PushFailureTimeName)
	if !ok {
		return true
	}
	pushed, ok := g.TimeGauge(PushTimeName)
	if !ok {
		return true
	}
	return failed <= pushed
}

// TimeGauge returns the value of the group's push_time_seconds or
// push_failure_time_seconds (name) and whether the group has it.
func (g GroupSnapshot) TimeGauge(name string) (float64, bool) {
	for _, fs := range g.Families {
		if fs.Family.GetName() == name && len(fs.Family.GetMetric()) > 0 {
			return fs.Family.Metric[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// groupRef is a group copied out under the lock: references to immutable
// family values, decoded after the lock is released.
type groupRef struct {
	key      GroupKey
	version  uint64
	deadline time.Time
	fams     []*family
}

// Snapshot returns a deep copy of every group, sorted by key.
func (s *Store) Snapshot() []GroupSnapshot {
	s.mu.Lock()
	refs := make([]groupRef, 0, len(s.groups))
	for _, g := range s.groups {
		refs = append(refs, refOf(g))
	}
	s.mu.Unlock()
	slices.SortFunc(refs, func(a, b groupRef) int { return strings.Compare(a.key.String(), b.key.String()) })
	out := make([]GroupSnapshot, 0, len(refs))
	for _, r := range refs {
		out = append(out, s.decodeGroup(r))
	}
	return out
}

// Range calls fn with a deep copy of each exposed group (see SetExposure)
// in key order, one group at
// a time, until fn returns false. Unlike Snapshot, its memory does not grow
// with the store's series: the lock is held to list the keys, then once per
// group to copy out the references to its (immutable) families, which are
// decoded outside the lock. Each group is consistent in itself; groups
// removed while Range runs are skipped, groups added are not visited.
// fn owns each snapshot and runs without the lock, so it may write to the
// network.
func (s *Store) Range(fn func(GroupSnapshot) bool) {
	s.mu.Lock()
	keys := make([]GroupKey, 0, len(s.groups))
	x := s.exposer()
	for k, g := range s.groups {
		if x.exposes(g) {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(keys, func(a, b GroupKey) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		gs, ok := s.Group(k)
		if ok && !fn(gs) {
			return
		}
	}
}

// Group returns a deep copy of group k and whether it exists.
func (s *Store) Group(k GroupKey) (GroupSnapshot, bool) {
	s.mu.Lock()
	g := s.groups[k]
	var r groupRef
	if g != nil {
		r = refOf(g)
	}
	s.mu.Unlock()
	if g == nil {
		return GroupSnapshot{}, false
	}
	return s.decodeGroup(r), true
}

// refOf copies out g. The caller holds s.mu.
func refOf(g *group) groupRef {
	r := groupRef{key: g.key, version: g.version, deadline: g.deadline, fams: make([]*family, 0, len(g.slots))}
	for _, sl := range g.slots {
		r.fams = append(r.fams, sl.fam)
	}
	return r
}

// decodeGroup decodes the families of r, sorted by name. A family that does
// not decode (it was rendered by this process, so that is a bug) is logged
// and left out rather than failing the whole snapshot. Families whose
// protobuf bytes were never scraped are decoded from their text, and the
// rendering is not kept (family.decode).
func (s *Store) decodeGroup(r groupRef) GroupSnapshot {
	slices.SortFunc(r.fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	gs := GroupSnapshot{Key: r.key, Version: r.version, Deadline: r.deadline, Families: make([]FamilySnapshot, 0, len(r.fams))}
	for _, f := range r.fams {
		mf, err := f.decode()
		if err != nil {
			s.logger.Error("snapshot: stored family does not decode", "group", formatKey(r.key), "err", err)
			continue
		}
		gs.Families = append(gs.Families, FamilySnapshot{Family: mf, Time: f.pushTime()})
	}
	return gs
}

// Restore inserts groups as they are (persistence load, later hand-off). A
// group that would make the store inconsistent (ErrInconsistent) or exceed
// Config.MaxGroups or Config.MaxSeries (ErrLimit) is skipped and reported in
// the returned error (errors.Join); the others are inserted.
//
// Each group is checked like a PUT of all its families, against the store
// and the groups restored before it, but nothing is added: no push-time
// gauges, no failure time. Families keep their times, groups their version
// (the store's version counter moves past it) and their deadline. A group
// whose deadline has passed by Config.Clock is not inserted but counted as
// expired; it is not an error. A group whose key is already stored replaces
// it as a whole. Restore does not modify groups.
func (s *Store) Restore(groups []GroupSnapshot) error {
	var errs []error
	restored, expired := 0, 0
	now := s.clock.Now()
	for _, gs := range groups {
		if !gs.Deadline.IsZero() && !gs.Deadline.After(now) {
			expired++
			continue
		}
		if err := s.restoreGroup(gs); err != nil {
			errs = append(errs, fmt.Errorf("restore group %s: %w", formatKey(gs.Key), err))
			continue
		}
		restored++
	}
	s.metrics.expired.Add(float64(expired))
	if restored > 0 {
		s.mu.Lock()
		s.changedLocked()
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (s *Store) restoreGroup(gs GroupSnapshot) error {
	if gs.Key.IsZero() {
		return ErrInvalidKey
	}
	news, err := s.buildRestore(gs)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &change{key: gs.Key, g: s.groups[gs.Key], news: news, drop: dropAll, failureOnly: neverPushed(gs)}
	if _, err := s.checkLimits(c); err != nil {
		return err
	}
	if probs := s.check(c); len(probs.errs) > 0 {
		return probs.err()
	}
	g := s.commit(c)
	g.version, g.replaced = gs.Version, gs.Version
	s.version = max(s.version, gs.Version)
	s.setDeadlineLocked(g, gs.Deadline)
	return nil
}

// buildRestore validates and renders the families of one group outside the
// lock.
func (s *Store) buildRestore(gs GroupSnapshot) ([]*built, error) {
	b := s.builders.Get().(*builder)
	defer s.builders.Put(b)
	news := make([]*built, 0, len(gs.Families))
	for _, fs := range gs.Families {
		if fs.Family == nil {
			return nil, fmt.Errorf("%w: nil family", ErrInconsistent)
		}
		for _, m := range fs.Family.Metric {
			if m.TimestampMs != nil {
				return nil, fmt.Errorf("%w: %w", ErrInconsistent, errTimestamps)
			}
		}
		news = append(news, b.build(fs.Family, fs.Time))
	}
	sortBuilt(news)
	for i := 1; i < len(news); i++ {
		if news[i].name == news[i-1].name {
			return nil, fmt.Errorf("%w: metric family %q appears twice", ErrInconsistent, news[i].name)
		}
	}
	return news, nil
}

// neverPushed reports whether gs holds nothing but its time gauges and no
// successful push: a failure-only group, as it was before it was saved.
func neverPushed(gs GroupSnapshot) bool {
	for _, f := range gs.Families {
		if n := f.Family.GetName(); n != PushTimeName && n != PushFailureTimeName {
			return false
		}
	}
	pushed, _ := gs.TimeGauge(PushTimeName)
	return pushed == 0
}
