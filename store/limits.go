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

// Limits a LimitError names: the values of its Limit field, and the
// reasons RejectReason returns for such a refusal.
const (
	LimitMaxGroups        = "max_groups"
	LimitMaxSeries        = "max_series"
	LimitMaxBytes         = "max_bytes"
	LimitMaxFailureGroups = "max_failure_groups" // only failure times go unrecorded for it
)

// LimitError is the error of a write refused by a limit of the store. It
// wraps ErrLimit; match it with errors.As to tell the limits apart.
type LimitError struct {
	// Limit is one of LimitMaxGroups, LimitMaxSeries, LimitMaxBytes and
	// LimitMaxFailureGroups.
	Limit string
	// Detail says by how much the write is over, and the flag to raise.
	Detail string
}

func (e *LimitError) Error() string { return ErrLimit.Error() + ": " + e.Detail }

// Unwrap makes errors.Is(err, ErrLimit) hold.
func (e *LimitError) Unwrap() error { return ErrLimit }

// growth returns how many groups (0 or 1), series and sample bytes c adds
// to the store once committed: the new families' minus those of the
// families they replace or drop. Families that failed to build count as
// empty; the check rejects them anyway. O(size of c). The caller holds s.mu.
func (s *Store) growth(c *change) (groups, series, bytes int) {
	for _, b := range c.news {
		if b.fam != nil {
			series += int(b.fam.samples)
			bytes += b.fam.textSize()
		}
	}
	switch {
	case c.g == nil:
		return 1, series, bytes
	case c.drop == dropNone:
		for _, b := range c.news {
			if sl := c.g.slot(b.name); sl != nil {
				series -= int(sl.fam.samples)
				bytes -= sl.fam.textSize()
			}
		}
		return 0, series, bytes
	}
	// Everything goes but the families a PUT keeps: the time gauges it
	// does not replace.
	for _, sl := range c.g.slots {
		series -= int(sl.fam.samples)
		bytes -= sl.fam.textSize()
	}
	if c.drop == dropPushed {
		for _, name := range [...]string{PushTimeName, PushFailureTimeName} {
			if sl := c.g.slot(name); sl != nil && c.lookup(name) == nil {
				series += int(sl.fam.samples)
				bytes += sl.fam.textSize()
			}
		}
	}
	return 0, series, bytes
}

// checkLimits returns an error wrapping ErrLimit and the reason of the
// rejection if c would take the store past a limit. A change that does not
// grow the store always passes, even when a lowered limit is already
// exceeded. The caller holds s.mu.
func (s *Store) checkLimits(c *change) (string, error) {
	groups, series, bytes := s.growth(c)
	if c.failureOnly {
		if max := s.cfg.MaxFailureGroups; max > 0 && groups > 0 && s.nFailureOnly+groups > max {
			return LimitMaxFailureGroups, &LimitError{Limit: LimitMaxFailureGroups, Detail: fmt.Sprintf(
				"it would create failure-only group %d but this peer holds at most %d; raise --store.max-failure-groups",
				s.nFailureOnly+groups, max)}
		}
	} else if c.g != nil && c.g.failureOnly {
		groups = 1 // a failure-only group becomes a counted one
	}
	if n := s.countedGroups(); !c.failureOnly && s.cfg.MaxGroups > 0 && groups > 0 && n+groups > s.cfg.MaxGroups {
		return LimitMaxGroups, errMaxGroups(n+groups, s.cfg.MaxGroups)
	}
	if max := s.cfg.MaxSeries; max > 0 && series > 0 && s.nSeries+series > max {
		return LimitMaxSeries, &LimitError{Limit: LimitMaxSeries, Detail: fmt.Sprintf(
			"it would add %d series to the %d stored but this peer holds at most %d series; raise --store.max-series",
			series, s.nSeries, max)}
	}
	if max := s.cfg.MaxBytes; max > 0 && bytes > 0 && s.nBytes+int64(bytes) > max {
		return LimitMaxBytes, &LimitError{Limit: LimitMaxBytes, Detail: fmt.Sprintf(
			"it would add %d bytes of samples to the %d stored but this peer holds at most %d; raise --store.max-bytes",
			bytes, s.nBytes, max)}
	}
	return "", nil
}

// countedGroups is the groups that count against Config.MaxGroups: all
// but the failure-only ones. The caller holds s.mu.
func (s *Store) countedGroups() int { return len(s.groups) - s.nFailureOnly }

func errMaxGroups(n, max int) error {
	return &LimitError{Limit: LimitMaxGroups, Detail: fmt.Sprintf(
		"it would create group %d but this peer holds at most %d groups; raise --store.max-groups", n, max)}
}

// refuseNewGroupEarly refuses a push that would create a group while the
// store already holds --store.max-groups, before the push is rendered: a
// cardinality attack then costs a map lookup per push instead of a render.
// The check in Apply under the same lock stays the authority; this one only
// saves work. Below the limit (by the count of the last change) it takes
// no lock: a count that lags can only send a push on to that check, or
// here to the lock.
func (s *Store) refuseNewGroupEarly(k GroupKey) error {
	max := s.cfg.MaxGroups
	if max <= 0 || s.counted.Load() < int64(max) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.groups[k]; (ok && !g.failureOnly) || s.countedGroups() < max {
		return nil
	}
	return rejected(LimitMaxGroups, errMaxGroups(s.countedGroups()+1, max))
}
