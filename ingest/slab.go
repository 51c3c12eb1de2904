package ingest

import (
	"unsafe"

	dto "github.com/prometheus/client_model/go"
)

// slab hands out pointers to zeroed values of T carved from chunks it
// allocates; a chunk is never reallocated, so the pointers stay valid
// until reuse.
type slab[T any] struct {
	buf  []T
	next int // size of the next chunk
}

func (s *slab[T]) new() *T {
	if len(s.buf) == cap(s.buf) {
		n := s.next
		if n <= 0 {
			n = 8
		}
		// At least double: a reused slab then grows its one chunk to
		// what a push of the usual size needs.
		n = max(n, 2*cap(s.buf))
		s.buf = make([]T, 0, n)
		s.next = n * 2
	}
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}

// reserve makes sure the next n values come from one chunk: if the
// current one has fewer left, the next chunk has at least n.
func (s *slab[T]) reserve(n int) {
	if cap(s.buf)-len(s.buf) < n {
		s.buf = nil // the chunk stays alive only through what it handed out
		s.next = max(s.next, n)
	}
}

// reuse zeroes every value the current chunk handed out and keeps that
// chunk for the next parse; earlier chunks are left to the collector.
// Every pointer handed out before is invalid afterwards.
func (s *slab[T]) reuse() {
	clear(s.buf)
	s.buf = s.buf[:0]
	s.next = 0
}

// bytes is the size of the slab's current chunk.
func (s *slab[T]) bytes() int {
	var zero T
	return cap(s.buf) * int(unsafe.Sizeof(zero))
}

// clientSlabs is what both push parsers (textParser, protoSlabs) carve a
// push's client structs from, with their pool's bookkeeping.
type clientSlabs struct {
	s        string // label strings are cut from it: the body or a copy
	fams     map[string]*dto.MetricFamily
	releaser func() // release as a func value, made once
	mapped   int    // the most entries the maps held: clearing keeps the room
	metrics  slab[dto.Metric]
	pairs    slab[dto.LabelPair]
	strs     slab[string]
	floats   slab[float64]
	counters slab[dto.Counter]
	gauges   slab[dto.Gauge]
	untyped  slab[dto.Untyped]
	labels   []*dto.LabelPair // the label slices of every metric, end to end
}

// slabBytes is the memory c keeps between pushes.
func (c *clientSlabs) slabBytes() int {
	return c.metrics.bytes() + c.pairs.bytes() + c.strs.bytes() + c.floats.bytes() + c.counters.bytes() +
		c.gauges.bytes() + c.untyped.bytes() + 8*cap(c.labels) + mapEntryBytes*c.mapped
}

// reuseSlabs zeroes what c handed out, for the next push.
func (c *clientSlabs) reuseSlabs() {
	c.metrics.reuse()
	c.pairs.reuse()
	c.strs.reuse()
	c.floats.reuse()
	c.counters.reuse()
	c.gauges.reuse()
	c.untyped.reuse()
	clear(c.labels)
	c.labels = c.labels[:0]
	clear(c.fams)
	c.s = ""
}
