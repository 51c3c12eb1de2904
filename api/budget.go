package api

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"github.com/pushring/pushring/ingest"
)

// Budget is a peer's push memory budget, shared by the pushes that arrive
// over HTTP (the API reads and decodes their bodies under it) and the ones
// other peers forward to this one (ChargeForwarded, called by the
// cluster's peer server). Create one with NewBudget and hand it to New
// (Deps.Budget) and to the cluster.
type Budget struct {
	b       *budget
	refused func(reason string)
}

// NewBudget returns the budget cfg sets (--push.memory-budget-bytes, or a
// quarter of the Go memory limit); ing counts the forwarded pushes it
// refuses, as the API counts its own.
func NewBudget(cfg Config, ing Ingester) *Budget {
	return &Budget{b: newBudget(cfg.budgetBytes(debug.SetMemoryLimit(-1))), refused: ing.CountRefused}
}

// ChargeForwarded charges a push another peer forwarded, whose
// decompressed body is body, as an HTTP push is charged: its bytes and
// what decoding and applying them will take (ingest.DecodeCostOf). The
// caller calls release once the push is applied or refused. Over the
// budget it returns the error the push is answered with (503 with
// Retry-After, naming the flag).
func (b *Budget) ChargeForwarded(body []byte, contentType string) (release func(), err error) {
	c := b.b.charge()
	if err := c.take(int64(len(body)) + ingest.DecodeCostOf(body, contentType)); err != nil {
		b.refused(ingest.ReasonMemoryBudget)
		return nil, err
	}
	return c.release, nil
}

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
