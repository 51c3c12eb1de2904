package shard

import "sync/atomic"

// Ring holds the current Placement and swaps it, whole, when the membership
// changes. Readers never lock: a lookup loads one pointer.
//
// Ring is safe for concurrent use and never blocks. Owner and Owners each
// load the current snapshot; a caller that needs several answers from one
// view of the cluster (owner and replicas, or a batch of keys) takes
// Placement once and asks it.
type Ring struct {
	cur     atomic.Pointer[Placement]
	gen     atomic.Uint64 // counts updates; see Generation
	changed chan struct{} // buffer 1; see Changed
}

// NewRing returns a ring holding p; a nil p is an empty placement.
func NewRing(p *Placement) *Ring {
	r := &Ring{changed: make(chan struct{}, 1)}
	if p == nil {
		p = &Placement{}
	}
	r.cur.Store(p)
	return r
}

// Placement returns the current snapshot. It never changes; the ring moves
// on to a new one.
func (r *Ring) Placement() *Placement { return r.cur.Load() }

// Owner returns the owner of keys with hash h in the current placement.
func (r *Ring) Owner(h uint64) Member { return r.cur.Load().Owner(h) }

// Owners returns the n owners of keys with hash h in the current placement,
// the owner first. The slice is new.
func (r *Ring) Owners(h uint64, n int) []Member { return r.cur.Load().Owners(h, n) }

// update makes p current unless it equals the current placement, and
// reports whether it did. Only the membership worker calls it, so the
// load-compare-store needs no lock.
func (r *Ring) update(p *Placement) bool {
	if r.cur.Load().Equal(p) {
		return false
	}
	r.cur.Store(p)
	r.gen.Add(1) // after the store: a reader of the new count sees p
	select {
	case r.changed <- struct{}{}:
	default: // a change is already pending; the reader loads the newest
	}
	return true
}

// Generation counts the placements the ring has held: it changes after
// every change of the placement, so a caller may keep answers it derived
// from the placement while Generation stays the same.
func (r *Ring) Generation() uint64 { return r.gen.Load() }

// Changed returns a channel that receives a value after the placement
// changed (a non-blocking send, buffer 1: several changes between two
// receives are one value). It is the same channel on every call; it suits
// one reader, which then loads Placement.
func (r *Ring) Changed() <-chan struct{} { return r.changed }
