package cluster

import (
	"fmt"
	"sync"
	"time"
)

// A stuck owner must cost the peers that forward to it no more than its
// share (docs/cluster.md, "A stuck owner"). Each owner has a breaker: at
// most half of --push.max-inflight forwarded pushes in flight to it, and
// after breakerThreshold calls in a row that got no answer it is passed
// over at once for a cool-down (doubling up to breakerCooldownMax), after
// which one call probes it. A push that finds its owner passed over goes
// to the next owner (or gets 503 when there is none) without waiting.

const (
	breakerThreshold   = 3
	breakerCooldownMin = time.Second
	breakerCooldownMax = 8 * time.Second
)

// breakers keeps one breaker per owner id. It is safe for concurrent use.
type breakers struct {
	maxInflight int // per owner; 0: unbounded
	now         func() time.Time

	mu     sync.Mutex
	byPeer map[string]*breaker
}

type breaker struct {
	inflight  int
	failures  int       // calls in a row without an answer
	openUntil time.Time // passed over until then; zero: closed
	cooldown  time.Duration
	probing   bool // the one call after a cool-down is in flight
}

func newBreakers(maxInflight int) *breakers {
	return &breakers{maxInflight: maxInflight, now: time.Now, byPeer: map[string]*breaker{}}
}

// acquire admits one call to owner id, or says why not. release reports
// whether the call got an answer (any answer: a refusal is an answer).
func (bs *breakers) acquire(id string) (release func(answered bool), err error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.byPeer[id]
	if b == nil {
		b = &breaker{}
		bs.byPeer[id] = b
	}
	now := bs.now()
	if !b.openUntil.IsZero() {
		if now.Before(b.openUntil) || b.probing {
			return nil, fmt.Errorf("passed over after %d calls in a row got no answer (--%s); tried again within %s",
				b.failures, flagForwardTimeout, b.cooldown)
		}
		b.probing = true // the cool-down is over: this call probes
	}
	if bs.maxInflight > 0 && b.inflight >= bs.maxInflight {
		return nil, fmt.Errorf("already %d pushes in flight to it, its share of --push.max-inflight", b.inflight)
	}
	b.inflight++
	return func(answered bool) { bs.release(b, answered) }, nil
}

func (bs *breakers) release(b *breaker, answered bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b.inflight--
	if answered {
		*b = breaker{inflight: b.inflight}
		return
	}
	b.failures++
	if b.probing || b.failures >= breakerThreshold {
		b.cooldown = min(max(2*b.cooldown, breakerCooldownMin), breakerCooldownMax)
		b.openUntil = bs.now().Add(b.cooldown)
		b.probing = false
	}
}

// open reports whether owner id is passed over now.
func (bs *breakers) open(id string) bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.byPeer[id]
	return b != nil && !b.openUntil.IsZero() && bs.now().Before(b.openUntil)
}

// reset closes the breaker of owner id: it came back into the view, so
// what its calls did before says nothing of it now.
func (bs *breakers) reset(id string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b := bs.byPeer[id]; b != nil {
		*b = breaker{inflight: b.inflight}
	}
}

// forget drops the breakers of owners not in keep.
func (bs *breakers) forget(keep map[string]bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for id, b := range bs.byPeer {
		if !keep[id] && b.inflight == 0 {
			delete(bs.byPeer, id)
		}
	}
}
