package api

import (
	"fmt"
	"sync/atomic"

	"github.com/pushring/pushring/ingest"
)

// budget is the one memory budget of the pushes being read and decoded
// (shared/DESIGN.md decision 16): a body is charged for its buffer while
// it arrives and for its decoding before it is admitted, and gives it all
// back once it has been applied or refused. Over the budget a push gets
// 503 with Retry-After at once instead of growing the heap.
type budget struct {
	max  int64 // 0: unlimited
	used atomic.Int64
}

func newBudget(max int64) *budget { return &budget{max: max} }

// charge starts the charge of one request.
func (b *budget) charge() *charge { return &charge{b: b} }

// take reserves n bytes, or reports that they do not fit.
func (b *budget) take(n int64) bool {
	if b.max <= 0 {
		b.used.Add(n)
		return true
	}
	for {
		used := b.used.Load()
		if used+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// inUse is the bytes charged now.
func (b *budget) inUse() int64 { return b.used.Load() }

// nearlyFull reports whether nine tenths of the budget are charged: /-/ready
// then steers new pushers to other peers.
func (b *budget) nearlyFull() bool { return b.max > 0 && b.inUse()*10 >= b.max*9 }

// charge is what one request holds of the budget. It is used by the
// request's goroutine only.
type charge struct {
	b     *budget
	taken int64
}

// take charges n more bytes, or returns a *budgetError.
func (c *charge) take(n int64) error {
	if !c.b.take(n) {
		return &budgetError{max: c.b.max, want: c.taken + n}
	}
	c.taken += n
	return nil
}

// release gives back everything the request took.
func (c *charge) release() {
	if c == nil {
		return
	}
	c.b.used.Add(-c.taken)
	c.taken = 0
}

// budgetError is a push refused because the bodies being read and decoded
// already hold the budget. It wraps ingest.ErrOverloaded: a 503 with
// Retry-After, as a full admission queue is.
type budgetError struct {
	max, want int64
}

func (e *budgetError) Error() string {
	return fmt.Sprintf("push refused: the push bodies being read and decoded hold the memory budget of %d bytes (this one needed %d so far); raise --%s, or retry later",
		e.max, e.want, flagMemoryBudget)
}

func (e *budgetError) Unwrap() error { return ingest.ErrOverloaded }
