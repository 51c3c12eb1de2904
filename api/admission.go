package api

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pushring/pushring/ingest"
)

// Admission bounds the pushes and deletes being handled at once
// (docs/design.md, "Bounded"). A request takes a slot once its body has
// been read and gives it back once it is answered; a push forwarded to
// this peer by another takes one too, so HTTP and forwarded pushes share
// the bound. When every
// slot is taken it waits at most maxWait for one; at most as many requests
// as there are slots wait at a time, and any beyond that are refused at
// once. So neither the goroutines parked here nor the time one spends here
// can grow without bound: an overloaded peer answers 503 quickly, and the
// pusher (or the load balancer) retries elsewhere or later.
//
// A capacity of 0 (--push.max-inflight=0) switches admission control off:
// every request gets in at once, and only the count of those in flight is
// kept for pushring_push_inflight.
type Admission struct {
	slots      chan struct{} // a value in the channel is a slot in use; nil when off
	maxWait    time.Duration
	maxWaiting int64
	waiting    atomic.Int64
	unlimited  atomic.Int64 // requests in flight when off
}

// NewAdmission returns an admission control of capacity slots
// (--push.max-inflight; 0 switches it off) whose waiters give up after
// maxWait (--push.max-queue-wait).
func NewAdmission(capacity int, maxWait time.Duration) *Admission {
	a := &Admission{maxWait: maxWait, maxWaiting: int64(capacity)}
	if capacity > 0 {
		a.slots = make(chan struct{}, capacity)
	}
	return a
}

// Acquire takes a slot, waiting at most maxWait (and no longer than ctx
// allows). On success the caller must call Release exactly once. A refusal
// is an *overloadedError.
func (a *Admission) Acquire(ctx context.Context) error {
	if a.slots == nil {
		a.unlimited.Add(1)
		return nil
	}
	select {
	case a.slots <- struct{}{}:
		return nil
	default:
	}
	if a.maxWait <= 0 {
		return a.refuse(refusedNoWait)
	}
	if a.waiting.Add(1) > a.maxWaiting {
		a.waiting.Add(-1)
		return a.refuse(refusedQueueFull)
	}
	defer a.waiting.Add(-1)
	timer := time.NewTimer(a.maxWait)
	defer timer.Stop()
	select {
	case a.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return a.refuse(refusedTimeout)
	case <-ctx.Done():
		// The client is gone; nobody reads the answer, but it is still
		// an overload refusal and counted as one.
		return a.refuse(refusedTimeout)
	}
}

// Release gives back a slot taken by Acquire.
func (a *Admission) Release() {
	if a.slots == nil {
		a.unlimited.Add(-1)
		return
	}
	<-a.slots
}

// inflight is the number of requests in flight.
func (a *Admission) inflight() int {
	if a.slots == nil {
		return int(a.unlimited.Load())
	}
	return len(a.slots)
}

// capacity is the number of slots; 0 when admission control is off.
func (a *Admission) capacity() int { return cap(a.slots) }

// queued is the number of requests waiting for a slot.
func (a *Admission) queued() int64 { return a.waiting.Load() }

// saturated reports whether every slot is taken and someone waits: the
// state /-/ready reports as not ready, so a load balancer sends new pushers
// to other peers until this one catches up.
func (a *Admission) saturated() bool {
	return a.slots != nil && a.inflight() >= a.capacity() && a.queued() > 0
}

// Why a push was refused.
const (
	refusedTimeout   = iota // waited maxWait (or the client left)
	refusedQueueFull        // maxWaiting others were already waiting
	refusedNoWait           // --push.max-queue-wait=0 and no slot free
)

func (a *Admission) refuse(why int) error {
	return &overloadedError{why: why, capacity: a.capacity(), maxWait: a.maxWait}
}

// overloadedError is a push refused by admission control. It wraps
// ingest.ErrOverloaded, so it is a 503, and writeError adds Retry-After.
// Its text names both flags an operator can raise.
type overloadedError struct {
	why      int
	capacity int
	maxWait  time.Duration
}

func (e *overloadedError) Error() string {
	inflight := fmt.Sprintf("%d pushes in flight", e.capacity)
	if e.capacity == 1 {
		inflight = "1 push in flight"
	}
	var what string
	switch e.why {
	case refusedQueueFull:
		what = fmt.Sprintf("%s and %d more waiting", inflight, e.capacity)
	case refusedNoWait:
		what = inflight + " and waiting is disabled"
	default:
		what = fmt.Sprintf("%s and none finished within %s", inflight, e.maxWait)
	}
	return fmt.Sprintf("push refused: %s; raise --%s or --%s, or retry later",
		what, flagMaxInflight, flagMaxQueueWait)
}

func (e *overloadedError) Unwrap() error { return ingest.ErrOverloaded }
