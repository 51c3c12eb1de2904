package store

import (
	"errors"
	"fmt"
)

// ErrLimit is wrapped by the error of a write refused because it would take
// this peer past Config.MaxGroups or Config.MaxSeries. The push itself may
// be fine: the peer is full, so the API answers 429 and the pusher may retry
// later or elsewhere. A refused write changes nothing, not even the group's
// failure time: a group it would have created would defeat the group limit,
// and a peer at its limit must not churn its persistence file on every
// refused retry.
var ErrLimit = errors.New("push refused")

// Reasons RejectReason returns for ErrLimit.
const (
	reasonMaxGroups = "max_groups"
	reasonMaxSeries = "max_series"
)

// growth returns how many groups (0 or 1) and series c adds to the store
// once committed: the new families' series minus those of the families they
// replace or drop. Families that failed to build count as empty; the check
// rejects them anyway. O(size of c). The caller holds s.mu.
func (s *Store) growth(c *change) (groups, series int) {
	for _, b := range c.news {
		if b.fam != nil {
			series += b.fam.samples
		}
	}
	switch {
	case c.g == nil:
		return 1, series
	case c.drop == dropNone:
		for _, b := range c.news {
			if sl := c.g.families[b.name]; sl != nil {
				series -= sl.fam.samples
			}
		}
		return 0, series
	}
	// Everything goes but the families a PUT keeps: the time gauges it
	// does not replace.
	series -= c.g.series
	if c.drop == dropPushed {
		for _, name := range [...]string{PushTimeName, PushFailureTimeName} {
			if sl := c.g.families[name]; sl != nil && c.lookup(name) == nil {
				series += sl.fam.samples
			}
		}
	}
	return 0, series
}

// checkLimits returns an error wrapping ErrLimit and the reason of the
// rejection if c would take the store past a limit. A change that does not
// grow the store always passes, even when a lowered limit is already
// exceeded. The caller holds s.mu.
func (s *Store) checkLimits(c *change) (string, error) {
	groups, series := s.growth(c)
	if max := s.cfg.MaxGroups; max > 0 && groups > 0 && len(s.groups)+groups > max {
		return reasonMaxGroups, errMaxGroups(len(s.groups)+groups, max)
	}
	if max := s.cfg.MaxSeries; max > 0 && series > 0 && s.nSeries+series > max {
		return reasonMaxSeries, fmt.Errorf("%w: it would add %d series to the %d stored but this peer holds at most %d series; raise --store.max-series",
			ErrLimit, series, s.nSeries, max)
	}
	return "", nil
}

func errMaxGroups(n, max int) error {
	return fmt.Errorf("%w: it would create group %d but this peer holds at most %d groups; raise --store.max-groups",
		ErrLimit, n, max)
}

// refuseNewGroupEarly refuses a push that would create a group while the
// store already holds --store.max-groups, before the push is rendered: a
// cardinality attack then costs a map lookup per push instead of a render.
// The check in Apply under the same lock stays the authority; this one only
// saves work.
func (s *Store) refuseNewGroupEarly(k GroupKey) error {
	max := s.cfg.MaxGroups
	if max <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[k]; ok || len(s.groups) < max {
		return nil
	}
	return rejected(reasonMaxGroups, errMaxGroups(len(s.groups)+1, max))
}
