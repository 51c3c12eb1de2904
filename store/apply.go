package store

import (
	"fmt"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Push is one write to a group. Families are already sanitised by ingest:
// every grouping label forced onto every metric, instance="" added where
// missing, label pairs sorted by name. The store keeps nothing of them
// once Apply returns (it keeps rendered bytes): the ingester reuses their
// memory for later pushes.
type Push struct {
	Key      GroupKey
	Replace  bool // PUT: replace the group's families; POST: replace same-named families
	Families map[string]*dto.MetricFamily
	Time     time.Time
	// TTL is how long the group lives after this push if no other push
	// succeeds: a successful push sets the group's deadline to Time+TTL,
	// or removes it when TTL is 0 (or negative): the group never expires.
	TTL time.Duration
}

// Apply checks p against the whole store in O(size of p) and applies it
// atomically.
//
// A push that would take the peer past Config.MaxGroups or Config.MaxSeries
// is refused with an error wrapping ErrLimit and changes nothing. Any other
// rejected push records p.Time as the group's failure time (creating the
// group only if that keeps the store consistent and within its limits; a
// group so created gets p's deadline) and returns an error wrapping
// ErrInconsistent; nothing else changes, the deadline of an existing group
// included.
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
		s.reject(p)
		return rejected(reasonTimestamp, fmt.Errorf("%w: %w", ErrInconsistent, errTimestamps))
	}
	if err := s.refuseNewGroupEarly(p.Key); err != nil {
		return err
	}
	b := s.builders.Get().(*builder)
	defer s.putBuilder(b)
	news, failure := s.buildPush(b, p)

	s.mu.Lock()
	defer s.mu.Unlock()
	c := &change{key: p.Key, g: s.groups[p.Key], news: news, drop: dropNone}
	if p.Replace {
		c.drop = dropPushed
	}
	s.addFailureFamily(b, c, failure, p.Time)
	if reason, err := s.checkLimits(c); err != nil {
		return rejected(reason, err)
	}
	if probs := s.check(c); len(probs.errs) > 0 {
		s.rejectLocked(p)
		return rejected(probs.reason(), probs.err())
	}
	g := s.commit(c)
	g.version = s.nextVersion()
	if p.Replace {
		g.replaced = g.version
	}
	s.setDeadlineLocked(g, deadlineOf(p))
	s.changedLocked()
	return nil
}

// buildPush validates and renders the pushed families and the new
// push_time_seconds outside the lock, into b's scratch: they live until b
// goes back to its pool. The pushed push_failure_time_seconds, if any, is
// returned apart: whether it is used depends on the group.
func (s *Store) buildPush(b *builder, p Push) (news []*built, failure *built) {
	slab := b.builtSlots(len(p.Families) + 1)
	news = b.news[:0]
	for name, mf := range p.Families {
		if mf == nil || name == PushTimeName {
			continue
		}
		nb := &slab[0]
		slab = slab[1:]
		b.buildInto(nb, mf, p.Time)
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
	b.buildInto(&slab[0], b.timeGauge(PushTimeName, p.Key, p.Time), p.Time)
	news = append(news, &slab[0])
	sortBuilt(news)
	b.news = news // keep what it grew to
	return news, failure
}

// addFailureFamily completes c with push_failure_time_seconds: the pushed
// one replaces the group's (a Pushgateway quirk), and a group
// without one gets a zero gauge, stamped t.
func (s *Store) addFailureFamily(b *builder, c *change, pushed *built, t time.Time) {
	if c.mine(PushFailureTimeName) == 1 {
		if pushed != nil {
			c.insert(pushed)
		}
		return
	}
	b.failure = built{}
	c.insert(b.buildInto(&b.failure, b.timeGauge(PushFailureTimeName, c.key, time.Time{}), t))
}

// putBuilder drops what b's scratch holds of a push (its families and
// their client structs, which the ingester reuses) and puts b back.
func (s *Store) putBuilder(b *builder) {
	clear(b.builts)
	b.builts = b.builts[:0]
	clear(b.news[:cap(b.news)])
	b.news = b.news[:0]
	if cap(b.builts) > maxKeptBuilts { // a push of many families: not kept
		b.builts, b.news = nil, nil
	}
	b.failure = built{}
	b.gauges.reset()
	b.resetRepeat()
	s.builders.Put(b)
}

// maxKeptBuilts is the most built families a pooled builder keeps room
// for (80 bytes each): pushes of more families are rare and need not pin
// their scratch.
const maxKeptBuilts = 256

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
		g = &group{key: c.key, slots: make([]*slot, 0, len(c.news)), failureOnly: c.failureOnly, split: chunkSplit(c.key)}
		s.groups[c.key] = g
		s.series.register(g)
		if g.failureOnly {
			s.nFailureOnly++
		}
	} else if g.failureOnly && !c.failureOnly {
		g.failureOnly = false // data arrived: a group like any other
		s.nFailureOnly--
	}
	if g.shape != nil {
		// ApplyRepeat may not repeat the last push past this write; the
		// shape's hash stays, as a sighting for LearnRepeat.
		g.shape.version = 0
	}
	if c.drop != dropNone {
		kept := g.slots[:0]
		for _, sl := range g.slots {
			if name := sl.fam.name; c.drops(name) && c.lookup(name) == nil {
				s.dropSlot(g, sl)
				continue
			}
			kept = append(kept, sl)
		}
		clear(g.slots[len(kept):])
		g.slots = kept
	}
	sorted, added := len(g.slots), false
	for _, b := range c.news {
		if s.setFamily(g, sorted, b.fam) {
			added = true
		}
	}
	if added {
		sortSlots(g.slots)
	}
	return g
}

// RecordFailure sets the failure time of group k to t, as a rejected push
// does: push_failure_time_seconds becomes t, and a group without
// push_time_seconds (a new one) gets a zero one. The group is created if it
// does not exist, unless its two gauges would clash with another group's
// series (a group {job="a",instance=""} next to {job="a"}, or a grouping
// label value that is not UTF-8; the Pushgateway creates it anyway and
// then fails every scrape) or the group would exceed
// Config.MaxGroups or Config.MaxSeries. A group it creates never expires;
// an existing group keeps its deadline. It reports whether t was recorded.
func (s *Store) RecordFailure(k GroupKey, t time.Time) bool {
	if k.IsZero() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordFailureLocked(k, t, time.Time{})
}

// recordFailureLocked records t as k's failure time; a group it creates
// gets deadline (zero: none). The caller holds s.mu.
func (s *Store) recordFailureLocked(k GroupKey, t, deadline time.Time) bool {
	b := s.builders.Get().(*builder)
	defer s.putBuilder(b)
	c := &change{key: k, g: s.groups[k], failureOnly: true}
	c.news = append(c.news, b.build(b.timeGauge(PushFailureTimeName, k, t), t))
	if c.mine(PushTimeName) == 0 {
		c.news = append(c.news, b.build(b.timeGauge(PushTimeName, k, time.Time{}), t))
	}
	sortBuilt(c.news)
	if _, err := s.checkLimits(c); err != nil {
		s.metrics.failuresUnrecorded.Inc()
		s.logger.Debug("failure time not recorded: the group would exceed a limit", "group", formatKey(k), "err", err)
		return false
	}
	if probs := s.check(c); len(probs.errs) > 0 {
		s.metrics.failuresUnrecorded.Inc()
		s.logger.Debug("failure time not recorded: it would make the store inconsistent",
			"group", formatKey(k), "err", probs.err())
		return false
	}
	created := c.g == nil
	g := s.commit(c)
	g.version = s.nextVersion()
	if created {
		s.setDeadlineLocked(g, deadline)
	}
	s.changedLocked()
	return true
}

// reject records the failure time of a rejected push.
func (s *Store) reject(p Push) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectLocked(p)
}

// rejectLocked records the failure time of a rejected push. A group that
// only the failure creates still gets p's deadline, so that groups whose
// pushes never succeed expire too. The caller holds s.mu.
func (s *Store) rejectLocked(p Push) {
	s.recordFailureLocked(p.Key, p.Time, deadlineOf(p))
}

// timeGauge returns push_time_seconds or push_failure_time_seconds of group
// k with value t in Unix seconds (0 for the zero time), labelled with the
// grouping labels plus instance="" if instance is not one of them. Every
// push builds one or two, in b's scratch (gaugeScratch): they are valid
// until b goes back to its pool.
func (b *builder) timeGauge(name string, k GroupKey, t time.Time) *dto.MetricFamily {
	g := &b.gauges
	var p *timeGaugeParts
	if g.n < len(g.parts) {
		p = &g.parts[g.n]
		g.n++
	} else {
		p = new(timeGaugeParts)
	}
	p.name, p.help, p.typ = name, pushTimeHelp, dto.MetricType_GAUGE
	if name == PushFailureTimeName {
		p.help = pushFailureTimeHelp
	}
	p.value = unixSeconds(t)
	p.gauge.Value = &p.value
	p.metric.Gauge = &p.gauge
	p.metric.Label = g.labels(k)
	p.metrics[0] = &p.metric
	p.mf.Name, p.mf.Help, p.mf.Type, p.mf.Metric = &p.name, &p.help, &p.typ, p.metrics[:]
	return &p.mf
}

// unixSeconds is the value of a time gauge: t in Unix seconds, 0 for
// the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// timeGaugeParts holds a time gauge family and everything it points to
// but its labels.
type timeGaugeParts struct {
	mf         dto.MetricFamily
	metric     dto.Metric
	gauge      dto.Gauge
	metrics    [1]*dto.Metric
	name, help string
	value      float64
	typ        dto.MetricType
}

// gaugeScratch is the memory of the time gauges a write builds: at most
// two (a push's push_time_seconds and the group's first
// push_failure_time_seconds, or a refusal's two), kept for the builder's
// next write. A label array that is outgrown is left to the gauges that
// point into it.
type gaugeScratch struct {
	parts [2]timeGaugeParts
	n     int
	pairs []dto.LabelPair
	strs  []string
	ptrs  []*dto.LabelPair
}

// maxKeptGaugeLabels bounds the label arrays a pooled builder keeps.
const maxKeptGaugeLabels = 64

// reset makes g's memory free for the next write and drops what the last
// one pointed to.
func (g *gaugeScratch) reset() {
	clear(g.parts[:])
	g.n = 0
	clear(g.pairs)
	clear(g.strs)
	clear(g.ptrs)
	g.pairs, g.strs, g.ptrs = g.pairs[:0], g.strs[:0], g.ptrs[:0]
	if cap(g.pairs) > maxKeptGaugeLabels {
		g.pairs, g.strs, g.ptrs = nil, nil, nil
	}
}

// labels returns the grouping labels of k plus instance="" if missing,
// sorted by name, in g's memory. Names and values share the key's string.
func (g *gaugeScratch) labels(k GroupKey) []*dto.LabelPair {
	enc := k.String()
	n := (strings.Count(enc, sep)+1)/2 + 1
	if cap(g.ptrs)-len(g.ptrs) < n {
		size := max(2*n, 8)
		g.pairs, g.strs, g.ptrs = make([]dto.LabelPair, 0, size), make([]string, 0, 2*size), make([]*dto.LabelPair, 0, size)
	}
	out := g.ptrs[len(g.ptrs):len(g.ptrs)]
	add := func(name, value string) {
		g.strs = append(g.strs, name, value)
		g.pairs = g.pairs[:len(g.pairs)+1]
		lp := &g.pairs[len(g.pairs)-1]
		lp.Name, lp.Value = &g.strs[len(g.strs)-2], &g.strs[len(g.strs)-1]
		out = append(out, lp)
	}
	hasInstance := false
	for rest := enc; rest != ""; {
		var name, value string
		name, rest, _ = strings.Cut(rest, sep)
		value, rest, _ = strings.Cut(rest, sep)
		if !hasInstance && name >= "instance" {
			if name != "instance" {
				add("instance", "")
			}
			hasInstance = true
		}
		add(name, value)
	}
	if !hasInstance {
		add("instance", "")
	}
	g.ptrs = g.ptrs[:len(g.ptrs)+len(out)]
	return out[:len(out):len(out)] // an append must not reach the next gauge's labels
}
