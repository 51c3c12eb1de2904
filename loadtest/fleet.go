package loadtest

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// due is a node's next scheduled push.
type due struct {
	at   time.Time
	node int
}

// dueHeap orders pending pushes by time; it implements heap.Interface.
type dueHeap []due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

// fleet runs the open loop: one scheduler goroutine hands due nodes to a
// bounded pool of workers; a node is never handed out while its previous
// push runs, so like a time.Tick pusher it misses ticks when the target is
// slow instead of queueing them.
type fleet struct {
	cfg   *Config
	nodes []*node
	st    *stats
	end   time.Time // no push starts at or after end
	half  time.Time // churned nodes stop here

	mu    sync.Mutex
	queue dueHeap
	wake  chan struct{} // cap 1: a worker re-queued a node
	rng   *rand.Rand    // jitter; guarded by mu
}

// runFleet pushes until cfg.Duration has passed, then waits for the pushes
// in flight; ctx cancels both.
func runFleet(ctx context.Context, cfg *Config, nodes []*node, st *stats) {
	start := time.Now()
	f := &fleet{
		cfg: cfg, nodes: nodes, st: st,
		end: start.Add(cfg.Duration), half: start.Add(cfg.Duration / 2),
		wake: make(chan struct{}, 1), rng: rand.New(rand.NewPCG(cfg.Seed, 0xf1ee7)),
	}
	for i := range nodes {
		// Spread the first pushes over one interval, as a fleet that was
		// not started in the same second would.
		f.queue = append(f.queue, due{at: start.Add(randDuration(f.rng, cfg.Interval)), node: i})
	}
	heap.Init(&f.queue)
	work := make(chan due)
	var wg sync.WaitGroup
	for range cfg.workers() {
		wg.Go(func() { f.work(ctx, work) })
	}
	f.schedule(ctx, work)
	close(work)
	wg.Wait()
}

// schedule feeds due nodes to work until the end of the run.
func (f *fleet) schedule(ctx context.Context, work chan<- due) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		d, wait, ok := f.next()
		if !ok {
			return
		}
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-f.wake:
			case <-timer.C:
			}
			continue
		}
		select {
		case work <- d:
		case <-ctx.Done():
			return
		}
	}
}

// next pops the earliest node if it is due, or says how long to wait for
// it. ok is false once nothing can start before the end of the run.
func (f *fleet) next() (d due, wait time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if !now.Before(f.end) {
		return due{}, 0, false
	}
	if len(f.queue) == 0 {
		// Every node is in flight; a worker's re-queue wakes us.
		return due{}, f.end.Sub(now), true
	}
	if wait := f.queue[0].at.Sub(now); wait > 0 {
		return due{}, min(wait, f.end.Sub(now)), true
	}
	return heap.Pop(&f.queue).(due), 0, true
}

// work pushes the nodes it is handed and re-queues each for its next tick.
func (f *fleet) work(ctx context.Context, work <-chan due) {
	for d := range work {
		n := f.nodes[d.node]
		start := f.st.begin()
		f.st.lag.Record(start.Sub(d.at))
		err := n.pushOnce(ctx, f.cfg.Method)
		f.st.end(start, err)
		f.requeue(d)
	}
}

// requeue schedules d's node one interval (± jitter) after its last tick,
// skipping the ticks that passed while it was busy, unless it churns out.
func (f *fleet) requeue(d due) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	next := d.at.Add(f.cfg.Interval + f.jitter())
	for !next.After(now) {
		f.st.skipped.Add(1)
		next = next.Add(f.cfg.Interval)
	}
	n := f.nodes[d.node]
	if n.churned && !next.Before(f.half) {
		return
	}
	heap.Push(&f.queue, due{at: next, node: d.node})
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// jitter returns a uniform offset in [-Jitter, +Jitter]; f.mu must be held.
func (f *fleet) jitter() time.Duration {
	if f.cfg.Jitter <= 0 {
		return 0
	}
	return randDuration(f.rng, 2*f.cfg.Jitter+1) - f.cfg.Jitter
}

// randDuration returns a uniform duration in [0, d).
func randDuration(r *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(d)))
}
