package main

import (
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// flagGCMinHeadroom sets the least the heap may grow between collections.
const flagGCMinHeadroom = "runtime.gc-min-headroom-bytes"

// defaultGCMinHeadroom is the default of --runtime.gc-min-headroom-bytes.
//
// GOGC sizes the collector's headroom by the live heap: at 50, a peer whose
// store holds 40k series (about 5 MiB live) collects every 2.5 MiB of
// garbage, which a push stream of 17k pushes/s makes in a sixtieth of a
// second. Each cycle has a fixed cost (stopping the world twice, scanning
// every goroutine's stack, write barriers on while it marks), so a small
// peer under load spent a fifth of its CPU on collections that freed a
// few MiB each. 16 MiB lets such a peer collect a few times a second; a
// store above 32 MiB live (about 250k series) already has more headroom at
// GOGC=50 and is not affected (BENCHMARKS.md, "The collector's headroom").
const defaultGCMinHeadroom = 16 << 20

// liveHeapMetric is the live heap the last collection marked.
const liveHeapMetric = "/gc/heap/live:bytes"

// runtimeMinHeap is the runtime's own least heap goal at GOGC=100, which
// it scales by the target: below it the goal is that minimum, not the
// live heap plus its share. A live heap is taken to be at least this much,
// so a small one (and the runtime's report of none before the first
// collection) gets a goal of about minBytes, not several times it.
const runtimeMinHeap = 4 << 20

// headroomPercent returns the collector's target that lets a heap of live
// bytes grow by at least minBytes (to minBytes, below runtimeMinHeap), and
// never below base.
func headroomPercent(base int, minBytes, live uint64) int {
	live = max(live, runtimeMinHeap)
	q, r := minBytes/live, minBytes%live // minBytes*100 may not fit
	if q >= math.MaxInt32/100 {
		return max(base, math.MaxInt32)
	}
	return max(base, int(q*100+(r*100+live-1)/live)) // rounded up
}

// gcHeadroom keeps the collector's target at or above a base so that the
// heap may always grow by at least min bytes past what the last collection
// left. It runs no goroutine of its own: after every collection a cleanup
// of an object that collection freed recomputes the target and arms the
// next one. stop ends the chain and puts the base back.
//
// The target is process-wide; so is this. A process that runs several peers
// (the tests) runs several chains, which compute the same target from the
// same heap.
type gcHeadroom struct {
	base int
	min  uint64

	mu      sync.Mutex // serialises a cycle and stop
	stopped bool
	pending bool // a cleanup is armed and has not run
	pct     int  // the target in force
	sample  []metrics.Sample
}

// sentinel is the object whose collection marks the end of a cycle. It
// holds a pointer so it is never packed with other small objects, which
// could keep it alive.
type sentinel struct{ _ *int }

// startGCHeadroom keeps the heap's headroom at minBytes or more above the
// target in force (the one setGCPercent chose), and logs what it does. It
// does nothing when minBytes is 0 or the collector is off (GOGC=off).
func startGCHeadroom(minBytes int64, logger *slog.Logger) (stop func()) {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if minBytes == 0 || base < 0 {
		logger.Info("no minimum headroom for the garbage collector", "min_headroom_bytes", minBytes, "gc_percent", base)
		return func() {}
	}
	h := newGCHeadroom(base, uint64(minBytes))
	logger.Info("garbage collector headroom kept", "min_headroom_bytes", minBytes, "gc_percent", base)
	h.start()
	return h.stop
}

func newGCHeadroom(base int, minBytes uint64) *gcHeadroom {
	return &gcHeadroom{
		base:   base,
		min:    minBytes,
		pct:    base,
		sample: []metrics.Sample{{Name: liveHeapMetric}},
	}
}

// start sets the target for the heap as it is and arms the chain.
func (h *gcHeadroom) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cycle()
}

// cycle recomputes the target from the live heap and arms the cleanup
// that runs it again after the next collection. The caller holds h.mu.
func (h *gcHeadroom) cycle() {
	if h.stopped {
		return
	}
	metrics.Read(h.sample)
	var live uint64
	if h.sample[0].Value.Kind() == metrics.KindUint64 {
		live = h.sample[0].Value.Uint64()
	}
	if pct := headroomPercent(h.base, h.min, live); pct != h.pct {
		debug.SetGCPercent(pct)
		h.pct = pct
	}
	h.pending = true
	runtime.AddCleanup(&sentinel{}, func(h *gcHeadroom) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.pending = false
		h.cycle()
	}, h)
}

// stop ends the chain and restores the base target. The cleanup armed last
// still runs after the next collection, and returns at once.
func (h *gcHeadroom) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	h.stopped = true
	debug.SetGCPercent(h.base)
}
