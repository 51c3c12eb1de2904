package store

import (
	"context"
	"time"
)

// Clock tells the time and makes timers. RealClock is the system clock;
// tests run RealClock inside a testing/synctest bubble or pass a fake. A
// Clock is used from one goroutine at a time.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C returns the channel that receives the time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing and reports whether it did so.
	Stop() bool
}

// RealClock is the system clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer as a Timer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// expiryResolution is how late RunExpiry may remove a group: it wakes at the
// earliest deadline rounded up to a multiple of this, so that groups whose
// deadlines are close together (a fleet pushing on the same schedule) go in
// one pass under the lock instead of one wake-up each.
const expiryResolution = 100 * time.Millisecond

// expireBatch bounds how many groups one pass of Expire removes under the
// lock before it lets pushes and scrapes in again.
const expireBatch = 1024

// deadlineOf returns the deadline a successful push gives its group: p.Time
// plus p.TTL, or none (zero) when p.TTL is not positive.
func deadlineOf(p Push) time.Time {
	if p.TTL <= 0 {
		return time.Time{}
	}
	return p.Time.Add(p.TTL)
}

// Expire removes every group whose deadline is at or before now, exactly as
// Delete would, and returns how many it removed. It costs O(log n) per
// removed group and nothing per other group: the groups with a deadline sit
// in a min-heap ordered by deadline.
func (s *Store) Expire(now time.Time) int {
	total := 0
	for {
		s.mu.Lock()
		n := 0
		for n < expireBatch && len(s.expiries) > 0 && !s.expiries[0].deadline.After(now) {
			s.removeGroupLocked(s.expiries[0])
			n++
		}
		if n > 0 {
			s.metrics.expired.Add(float64(n))
			s.changedLocked()
		}
		s.mu.Unlock()
		total += n
		if n < expireBatch {
			return total
		}
	}
}

// RunExpiry removes groups as their deadlines pass, until ctx is done; then
// it returns nil. The caller owns the goroutine that calls it; RunExpiry
// starts none and holds one timer at a time.
//
// It sleeps until the earliest deadline (rounded up to expiryResolution),
// and wakes earlier when a write gives some group an earlier deadline than
// any before.
func (s *Store) RunExpiry(ctx context.Context, clock Clock) error {
	for {
		s.Expire(clock.Now())
		var fire <-chan time.Time
		var timer Timer
		if next, ok := s.nextDeadline(); ok {
			timer = clock.NewTimer(max(wakeTime(next).Sub(clock.Now()), 0))
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-fire:
		case <-s.expiryWake:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// wakeTime rounds a deadline up to a multiple of expiryResolution.
func wakeTime(deadline time.Time) time.Time {
	w := deadline.Truncate(expiryResolution)
	if w.Before(deadline) {
		w = w.Add(expiryResolution)
	}
	return w
}

// nextDeadline returns the earliest deadline, if any group has one.
func (s *Store) nextDeadline() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.expiries) == 0 {
		return time.Time{}, false
	}
	return s.expiries[0].deadline, true
}

// setDeadlineLocked gives g the deadline d (zero: none) and wakes RunExpiry
// if that is now the earliest deadline and earlier than g's was. The
// caller holds s.mu.
func (s *Store) setDeadlineLocked(g *group, d time.Time) {
	d = d.Round(0) // wall clock only: restored deadlines have no monotonic reading, and the heap needs one order
	old := g.deadline
	g.deadline = d
	switch {
	case d.IsZero():
		s.expiries.remove(g)
		return
	case g.expiryPos == 0:
		s.expiries.push(g)
	case d.Equal(old):
		return
	default:
		s.expiries.fix(g)
	}
	if s.expiries[0] == g && (old.IsZero() || d.Before(old)) {
		select {
		case s.expiryWake <- struct{}{}:
		default:
		}
	}
}

// expiryQueue is a min-heap of the groups that have a deadline, by
// deadline. Every group knows its position (group.expiryPos), so moving or
// removing one is O(log n) and the heap never holds a stale entry: its size
// is the number of groups with a deadline.
type expiryQueue []*group

func (q expiryQueue) less(i, j int) bool { return q[i].deadline.Before(q[j].deadline) }

func (q expiryQueue) swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].expiryPos = int32(i + 1) //nolint:gosec // see group.expiryPos
	q[j].expiryPos = int32(j + 1) //nolint:gosec // see group.expiryPos
}

func (q *expiryQueue) push(g *group) {
	*q = append(*q, g)
	g.expiryPos = int32(len(*q)) //nolint:gosec // see group.expiryPos
	q.up(len(*q) - 1)
}

// remove takes g out of the queue; a group not in it is left alone.
func (q *expiryQueue) remove(g *group) {
	if g.expiryPos == 0 {
		return
	}
	i, last := int(g.expiryPos)-1, len(*q)-1
	if i != last {
		q.swap(i, last)
	}
	(*q)[last] = nil
	*q = (*q)[:last]
	g.expiryPos = 0
	if i != last {
		q.fix((*q)[i])
	}
}

// fix restores the heap order after g's deadline changed.
func (q expiryQueue) fix(g *group) {
	i := int(g.expiryPos) - 1
	if !q.down(i) {
		q.up(i)
	}
}

func (q expiryQueue) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			return
		}
		q.swap(i, parent)
		i = parent
	}
}

// down moves the entry at i towards the leaves and reports whether it moved.
func (q expiryQueue) down(i int) bool {
	start := i
	for {
		child := 2*i + 1
		if child >= len(q) {
			break
		}
		if r := child + 1; r < len(q) && q.less(r, child) {
			child = r
		}
		if !q.less(child, i) {
			break
		}
		q.swap(i, child)
		i = child
	}
	return i > start
}
