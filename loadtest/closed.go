package loadtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// runClosed runs concurrency pushers that push the groups round robin, each
// as soon as its previous push was answered, until count pushes were sent
// (count > 0), until has passed (unless zero) or ctx is done, whichever comes
// first. Churned groups stop being pushed halfway (by count, else by time).
func runClosed(ctx context.Context, cfg *Config, nodes []*node, st *stats, count uint64, until time.Time) {
	var next atomic.Uint64
	halfAt := time.Now().Add(time.Until(until) / 2)
	halfway := func(i uint64) bool {
		if count > 0 {
			return i >= count/2
		}
		return !time.Now().Before(halfAt)
	}
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for running(ctx, until) {
				i := next.Add(1) - 1
				if count > 0 && i >= count {
					return
				}
				n := nodes[i%uint64(len(nodes))]
				if n.churned && halfway(i) {
					continue
				}
				pushLocked(ctx, cfg, n, st)
			}
		})
	}
	wg.Wait()
}

// pushLocked pushes n while holding its lock, so that pushes of one group
// never overlap and its last acknowledged value is well defined.
func pushLocked(ctx context.Context, cfg *Config, n *node, st *stats) {
	n.mu.Lock()
	defer n.mu.Unlock()
	start := st.begin()
	st.end(start, n.pushOnce(ctx, cfg.Method))
}

// running reports whether ctx is live and until (if set) is still ahead.
func running(ctx context.Context, until time.Time) bool {
	return ctx.Err() == nil && (until.IsZero() || time.Now().Before(until))
}
