package store

import "sync/atomic"

// DefaultMaxRenderCacheBytes is the default of Config.MaxRenderCacheBytes:
// the protobuf renderings of ~500k series or the OpenMetrics ones of
// ~450k (BenchmarkScrapeHeap400k measures ~125 and ~150 bytes a series).
const DefaultMaxRenderCacheBytes = 64 << 20

// renderCache accounts for the protobuf and OpenMetrics renderings that
// scrapes keep on family values (family.pbKept, family.om), and the
// gzipped chunks of text they keep (gzip.go), so that
// together they never take more than a fixed number of bytes, however
// large the store. A scrape keeps a rendering while there is room; past
// that it renders the family for itself and drops the bytes once written,
// so a scrape's extra memory is one family's rendering, not the store's.
// Room comes back when a family with kept renderings leaves the store
// (release).
type renderCache struct {
	limit int64 // 0: unlimited
	used  atomic.Int64
}

// keep stores b in slot, a rendering of f, if the cache has room and
// nothing is kept there yet, and reports whether it did. A family that
// leaves the store meanwhile (release) keeps nothing: either release sees
// b and gives its room back, or keep sees that f left and does.
func (c *renderCache) keep(f *family, slot *atomic.Pointer[[]byte], b []byte) bool {
	if c == nil {
		return false
	}
	n := int64(cap(b))
	if used := c.used.Add(n); c.limit > 0 && used > c.limit {
		c.used.Add(-n)
		return false
	}
	if !slot.CompareAndSwap(nil, &b) {
		c.used.Add(-n)
		return false
	}
	if f.is(famLeft) && slot.CompareAndSwap(&b, nil) {
		c.used.Add(-n)
	}
	return true
}

// release gives back the room of f's kept renderings: f has left the
// store (replaced, dropped or wiped). Scrapes still writing f may render it
// again; they keep nothing.
func (c *renderCache) release(f *family) {
	f.flags.Or(famLeft)
	for _, slot := range []*atomic.Pointer[[]byte]{&f.pbKept, &f.om} {
		if p := slot.Swap(nil); p != nil {
			c.used.Add(-int64(cap(*p)))
		}
	}
}

// reserve takes room for n bytes if the cache has it, and reports whether
// it did.
func (c *renderCache) reserve(n int) bool {
	if used := c.used.Add(int64(n)); c.limit > 0 && used > c.limit {
		c.used.Add(-int64(n))
		return false
	}
	return true
}

// fits reports whether the cache has room for n more bytes (a nil cache
// never has).
func (c *renderCache) fits(n int) bool {
	return c != nil && (c.limit == 0 || c.used.Load()+int64(n) <= c.limit)
}

// bytes returns the bytes the kept renderings take.
func (c *renderCache) bytes() int64 { return c.used.Load() }
