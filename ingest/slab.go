package ingest

import "unsafe"

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
