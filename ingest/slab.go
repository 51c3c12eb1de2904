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

// ptrSlab hands out slices of pointers (a family's metrics, a histogram's
// buckets) end to end from chunks it allocates, as slab hands out values:
// growing them one append at a time took an allocation per doubling.
//
// A slice grows in place while it is the last one handed out, which is
// how the parsers fill them: a family's lines, a histogram's buckets,
// follow one another. A slice that is no longer the last (a family whose
// lines come back after another family's) grows by append, off the slab.
// Every slice has no spare capacity, so no append by anyone can reach a
// neighbour. Its chunks are a slab's: reserve, reuse and bytes are slab's.
type ptrSlab[T any] struct {
	slab[*T]
}

// add returns s, a slice from add or an empty one, with v appended.
func (a *ptrSlab[T]) add(s []*T, v *T) []*T {
	n := len(a.buf)
	last := n > 0 && len(s) > 0 && &s[len(s)-1] == &a.buf[n-1]
	if len(s) > 0 && !last {
		return append(s, v)
	}
	if n == cap(a.buf) {
		// A new chunk, at least double, as in slab; s moves to it.
		c := max(a.next, 2*cap(a.buf), 8)
		a.buf = append(make([]*T, 0, c), s...)
		a.next = 2 * c
		n = len(s)
	}
	a.buf = append(a.buf, v)
	return a.buf[n-len(s) : n+1 : n+1]
}

// clientSlabs is what both push parsers (textParser, protoSlabs) carve a
// push's client structs from, with their pool's bookkeeping.
type clientSlabs struct {
	s          string // label strings are cut from it: the body or a copy
	fams       map[string]*dto.MetricFamily
	releaser   func()   // release as a func value, made once
	mapped     int      // the most entries the maps held: clearing keeps the room
	names      interned // family names and HELP texts, kept across pushes
	families   slab[dto.MetricFamily]
	types      slab[dto.MetricType]
	metrics    slab[dto.Metric]
	pairs      slab[dto.LabelPair]
	strs       slab[string]
	floats     slab[float64]
	uints      slab[uint64]
	counters   slab[dto.Counter]
	gauges     slab[dto.Gauge]
	untyped    slab[dto.Untyped]
	histograms slab[dto.Histogram]
	buckets    slab[dto.Bucket]
	labels     []*dto.LabelPair // the label slices of every metric, end to end
	metricPtrs ptrSlab[dto.Metric]
	bucketPtrs ptrSlab[dto.Bucket]
}

// slabBytes is the memory c keeps between pushes.
func (c *clientSlabs) slabBytes() int {
	return c.names.bytes + c.families.bytes() + c.types.bytes() + c.metrics.bytes() + c.pairs.bytes() +
		c.strs.bytes() + c.floats.bytes() + c.uints.bytes() + c.counters.bytes() + c.gauges.bytes() +
		c.untyped.bytes() + c.histograms.bytes() + c.buckets.bytes() + 8*cap(c.labels) +
		c.metricPtrs.bytes() + c.bucketPtrs.bytes() + mapEntryBytes*c.mapped
}

// reuseSlabs zeroes what c handed out, for the next push. The interned
// names stay: they are the point of keeping them.
func (c *clientSlabs) reuseSlabs() {
	c.families.reuse()
	c.types.reuse()
	c.metrics.reuse()
	c.pairs.reuse()
	c.strs.reuse()
	c.floats.reuse()
	c.uints.reuse()
	c.counters.reuse()
	c.gauges.reuse()
	c.untyped.reuse()
	c.histograms.reuse()
	c.buckets.reuse()
	clear(c.labels)
	c.labels = c.labels[:0]
	c.metricPtrs.reuse()
	c.bucketPtrs.reuse()
	clear(c.fams)
	c.s = ""
}
