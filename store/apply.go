package store

import (
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Push is one write to a group. Families are already sanitised by ingest:
// every grouping label forced onto every metric, instance="" added where
// missing, label pairs sorted by name. The store takes ownership of them.
type Push struct {
	Key      GroupKey
	Replace  bool // PUT: replace the group's families; POST: replace same-named families
	Families map[string]*dto.MetricFamily
	Time     time.Time
}

// Apply checks p against the whole store in O(size of p) and applies it
// atomically. A rejected push records p.Time as the group's failure time
// (creating the group only if that keeps the store consistent) and returns an
// error wrapping ErrInconsistent; nothing else changes.
//
// As with the Pushgateway, a pushed push_time_seconds is ignored, a pushed
// push_failure_time_seconds replaces the group's own if the group has one,
// and an empty (or nil) Families map is an update that only sets the push
// time (and, with Replace, drops every pushed family).
func (s *Store) Apply(p Push) error {
	if p.Key.IsZero() {
		return fmt.Errorf("apply push: %w", ErrInvalidKey)
	}
	if hasTimestamps(p.Families) {
		s.reject(p, reasonTimestamp)
		return fmt.Errorf("%w: %w", ErrInconsistent, errTimestamps)
	}
	news, failure := s.buildPush(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	c := &change{key: p.Key, g: s.groups[p.Key], news: news, drop: dropNone}
	if p.Replace {
		c.drop = dropPushed
	}
	s.addFailureFamily(c, failure, p.Time)
	if probs := s.check(c); len(probs.errs) > 0 {
		s.rejectLocked(p.Key, p.Time, probs.reason())
		return probs.err()
	}
	s.commit(c).version = s.nextVersion()
	s.changedLocked()
	return nil
}

// buildPush validates and renders the pushed families and the new
// push_time_seconds outside the lock. The pushed push_failure_time_seconds,
// if any, is returned apart: whether it is used depends on the group.
func (s *Store) buildPush(p Push) (news []*built, failure *built) {
	b := s.builders.Get().(*builder)
	defer s.builders.Put(b)
	news = make([]*built, 0, len(p.Families)+2)
	for name, mf := range p.Families {
		if mf == nil || name == PushTimeName {
			continue
		}
		nb := b.build(mf, p.Time)
		if name != nb.name {
			nb.errs = append(nb.errs, fmt.Errorf("metric family %q was pushed under the name %q", nb.name, name))
			nb.name, nb.fam = name, nil
		}
		if name == PushFailureTimeName {
			failure = nb
			continue
		}
		news = append(news, nb)
	}
	news = append(news, b.build(timeGauge(PushTimeName, p.Key, p.Time), p.Time))
	sortBuilt(news)
	return news, failure
}

// addFailureFamily completes c with push_failure_time_seconds: the pushed
// one replaces the group's (a Pushgateway quirk, spec §2.2), and a group
// without one gets a zero gauge, stamped t.
func (s *Store) addFailureFamily(c *change, pushed *built, t time.Time) {
	if c.mine(PushFailureTimeName) == 1 {
		if pushed != nil {
			c.insert(pushed)
		}
		return
	}
	b := s.builders.Get().(*builder)
	defer s.builders.Put(b)
	c.insert(b.build(timeGauge(PushFailureTimeName, c.key, time.Time{}), t))
}

// insert adds b to c.news, keeping it sorted. b's name must be new to c.
func (c *change) insert(b *built) {
	c.news = append(c.news, b)
	sortBuilt(c.news)
}

// commit applies a checked change and returns the group. The caller holds
// s.mu and sets the version.
func (s *Store) commit(c *change) *group {
	g := c.g
	if g == nil {
		g = &group{key: c.key, families: make(map[string]*slot, len(c.news))}
		s.groups[c.key] = g
	}
	if c.drop != dropNone {
		for name := range g.families {
			if c.drops(name) && c.lookup(name) == nil {
				s.dropFamily(g, name)
			}
		}
	}
	for _, b := range c.news {
		s.setFamily(g, b.fam)
	}
	return g
}

// RecordFailure sets the failure time of group k to t, as a rejected push
// does: push_failure_time_seconds becomes t, and a group without
// push_time_seconds (a new one) gets a zero one. The group is created if it
// does not exist, unless its two gauges would clash with another group's
// series (a group {job="a",instance=""} next to {job="a"}, or a grouping
// label value that is not UTF-8): the Pushgateway creates it anyway and
// then fails every scrape (spec §4.5). It reports whether t was recorded.
func (s *Store) RecordFailure(k GroupKey, t time.Time) bool {
	if k.IsZero() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordFailureLocked(k, t)
}

func (s *Store) recordFailureLocked(k GroupKey, t time.Time) bool {
	b := s.builders.Get().(*builder)
	defer s.builders.Put(b)
	c := &change{key: k, g: s.groups[k]}
	c.news = append(c.news, b.build(timeGauge(PushFailureTimeName, k, t), t))
	if c.mine(PushTimeName) == 0 {
		c.news = append(c.news, b.build(timeGauge(PushTimeName, k, time.Time{}), t))
	}
	sortBuilt(c.news)
	if probs := s.check(c); len(probs.errs) > 0 {
		s.metrics.failuresUnrecorded.Inc()
		s.logger.Debug("failure time not recorded: it would make the store inconsistent",
			"group", formatKey(k), "err", probs.err())
		return false
	}
	s.commit(c).version = s.nextVersion()
	s.changedLocked()
	return true
}

// reject counts a rejection and records the failure time.
func (s *Store) reject(p Push, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectLocked(p.Key, p.Time, reason)
}

func (s *Store) rejectLocked(k GroupKey, t time.Time, reason string) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	s.recordFailureLocked(k, t)
}

// timeGauge returns push_time_seconds or push_failure_time_seconds of group
// k with value t in Unix seconds (0 for the zero time), labelled with the
// grouping labels plus instance="" if instance is not one of them.
func timeGauge(name string, k GroupKey, t time.Time) *dto.MetricFamily {
	help := pushTimeHelp
	if name == PushFailureTimeName {
		help = pushFailureTimeHelp
	}
	var v float64
	if !t.IsZero() {
		v = float64(t.UnixNano()) / 1e9
	}
	return &dto.MetricFamily{
		Name: proto.String(name),
		Help: proto.String(help),
		Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{
			Label: gaugeLabels(k),
			Gauge: &dto.Gauge{Value: proto.Float64(v)},
		}},
	}
}

// gaugeLabels returns the grouping labels of k plus instance="" if missing,
// sorted by name.
func gaugeLabels(k GroupKey) []*dto.LabelPair {
	ls := k.Labels()
	out := make([]*dto.LabelPair, 0, len(ls)+1)
	hasInstance := false
	for _, l := range ls {
		if l.Name == "instance" {
			hasInstance = true
		}
		if !hasInstance && l.Name > "instance" {
			out = append(out, &dto.LabelPair{Name: proto.String("instance"), Value: proto.String("")})
			hasInstance = true
		}
		out = append(out, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
	}
	if !hasInstance {
		out = append(out, &dto.LabelPair{Name: proto.String("instance"), Value: proto.String("")})
	}
	return out
}
