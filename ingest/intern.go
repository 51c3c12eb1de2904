package ingest

import "strings"

// interned keeps the family names and HELP texts a pooled parser copied
// out of earlier pushes, so that the next push of the same families (a
// client pushes the same ones every few seconds) takes the same strings
// instead of a copy of each. The strings are Go strings of their own,
// never part of a body, and never change: the store may keep them, and
// other pushes may hold them at the same time.
//
// The strings and their map are memory kept with the parser in its pool,
// so they are bounded: at most maxInternedBytes, counted with
// internEntryBytes per entry (which bounds the entries too). When a new
// string would pass the bound, the parser forgets all of them and starts
// over: pushes whose names do not fit then copy theirs, as without it.
type interned struct {
	m     map[string]string // nil: a parser out of the pools, which copies
	bytes int               // the strings' bytes and internEntryBytes each
}

const (
	// maxInternedBytes bounds a parser's interned strings: a few thousand
	// names and HELP texts of usual lengths.
	maxInternedBytes = 128 << 10
	// maxInternedLen is the longest string interned; longer ones, rare and
	// costly to keep, are only copied.
	maxInternedLen = 1 << 10
	// internEntryBytes is what the map holds per entry, from above: the
	// key's and the value's headers, its control byte and the slack of a
	// map that just grew.
	internEntryBytes = 96
)

// newInterned returns an empty set, to be kept by a parser in a pool.
func newInterned() interned { return interned{m: map[string]string{}} }

// get returns a string equal to s that does not share its bytes: the
// interned one, or a copy, which is interned. s may be part of a body:
// it is only looked up, and copied if kept.
func (c *interned) get(s string) string {
	if v, ok := c.m[s]; ok {
		return v
	}
	v := strings.Clone(s)
	if c.m == nil || len(v) > maxInternedLen {
		return v
	}
	cost := internEntryBytes + len(v)
	if c.bytes+cost > maxInternedBytes {
		// A new map: a cleared one would keep its room.
		*c = newInterned()
	}
	c.m[v] = v
	c.bytes += cost
	return v
}
