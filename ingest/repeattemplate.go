package ingest

import (
	"bytes"
	"encoding/binary"
	"math"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protowire"
)

// Templates of repeated protobuf bodies. A client that pushes the same
// registry again sends the same bytes but for its values: doubles, which
// keep their eight bytes, and varint counts, which keep theirs unless they
// cross a power of 128. Once a body's shape has repeated (the store
// applied it as new values), the ingester keeps where scanProto found its
// values, and the body with those bytes zeroed. A later body of the same
// length whose bytes, with the same ones zeroed, are equal, and whose
// counts take exactly the bytes they took, is that body but for its
// values: scanProto would walk it field for field as it walked the first
// (every choice it makes depends on bytes outside the values, and on a
// count's size and being at most maxExactCount, which the template
// checks), so it has the same shape, and its values are read from their
// places. That replaces a walk of every field with a comparison and a
// read per value. The template also holds the body's decode cost
// (protoItems), which depends on its fields and lengths only: DecodeCost
// takes it from there.

// protoSlot is where scanProto read a value in a body.
type protoSlot struct {
	off   uint32 // its first byte
	width uint8  // 8 for a double; a varint's bytes
	count bool   // a varint count, at most maxExactCount
}

// slot records the value whose field ends where rest starts (rest is a
// part of sc.base, whose offsets a slice's capacity gives) and returns
// its slot. A varint ends at its first byte below 0x80 and the tag before
// it ends in one too, so its bytes are the last one and those above 0x7f
// before it.
func (sc *repeatScan) slot(rest []byte, count bool) int32 {
	end := cap(sc.base) - cap(rest)
	w := 8
	if count {
		w = 1
	}
	if end < w || end > len(sc.base) {
		sc.badSlots = true // rest is not of base: no template
		return 0
	}
	for count && end-w-1 >= 0 && sc.base[end-w-1] >= 0x80 {
		w++
	}
	sc.slots = append(sc.slots, protoSlot{off: uint32(end - w), width: uint8(w), count: count}) //nolint:gosec // a body is below 4 GiB, a varint 10 bytes
	return int32(len(sc.slots) - 1)                                                             //nolint:gosec // slots are at most a body's bytes
}

// value appends v, read from slot, to the scan's values.
func (sc *repeatScan) value(v float64, slot int32) {
	sc.values = append(sc.values, v)
	sc.order = append(sc.order, slot)
}

// protoTemplate is a protobuf body whose shape repeated, its values taken
// out.
type protoTemplate struct {
	shape  uint64
	masked []byte // the body, its values' bytes zeroed
	slots  []protoSlot
	order  []int32 // the slot of each value, in the scan's order
	cost   protoCost
	// hits and misses count the bodies find offered it that it read
	// and that it did not: protoTemplates.keep replaces a template that
	// misses far more often than it hits.
	hits, misses atomic.Int64
}

// Bounds of the process's templates: at most protoTemplateCount, of
// bodies up to maxTemplateBytes, so at most about 2 MiB in all.
const (
	protoTemplateCount = 64
	maxTemplateBytes   = 16 << 10
	// templateMisses is how many more misses than twice its hits a
	// template may have before another one replaces it.
	templateMisses = 16
)

// protoTemplates are templates, one per body length modulo
// protoTemplateCount.
type protoTemplates [protoTemplateCount]atomic.Pointer[protoTemplate]

// templates are the process's: a template depends on nothing but the body
// it was made of, so every ingester may use every one.
var templates protoTemplates

// find returns the template for a body of b's length, or nil. A template
// of another length counts a miss.
func (ts *protoTemplates) find(b []byte) *protoTemplate {
	t := ts[len(b)%protoTemplateCount].Load()
	if t != nil && len(t.masked) != len(b) {
		t.misses.Add(1)
		return nil
	}
	return t
}

// matching returns the template that is b but for the values, or nil.
func (ts *protoTemplates) matching(b []byte) *protoTemplate {
	if t := ts[len(b)%protoTemplateCount].Load(); t != nil && t.matches(b) {
		return t
	}
	return nil
}

// keep makes a template of sc, a protobuf body scanned and then applied
// as a repeat, unless the template for its length is one that serves.
func (ts *protoTemplates) keep(sc *repeatScan) {
	if len(sc.base) > maxTemplateBytes || len(sc.base) == 0 || sc.badSlots {
		return
	}
	slot := &ts[len(sc.base)%protoTemplateCount]
	if old := slot.Load(); old != nil && old.misses.Load() <= 2*old.hits.Load()+templateMisses {
		return
	}
	t := &protoTemplate{
		shape:  sc.shape,
		masked: bytes.Clone(sc.base),
		slots:  append([]protoSlot(nil), sc.slots...),
		order:  append([]int32(nil), sc.order...),
		cost:   protoItems(sc.base),
	}
	for _, s := range t.slots {
		clear(t.masked[s.off : s.off+uint32(s.width)])
	}
	slot.Store(t)
}

// matches reports whether body is t's body but for the values: of its
// length, equal outside the slots, each count in its slot taking all of
// it and at most maxExactCount.
func (t *protoTemplate) matches(body []byte) bool {
	if len(body) != len(t.masked) {
		return false
	}
	from := uint32(0)
	for _, s := range t.slots {
		if !bytes.Equal(body[from:s.off], t.masked[from:s.off]) {
			return false
		}
		from = s.off + uint32(s.width)
		if s.count {
			if x, n := protowire.ConsumeVarint(body[s.off:from]); n != int(s.width) || x > maxExactCount {
				return false
			}
		}
	}
	return bytes.Equal(body[from:], t.masked[from:])
}

// read reads body into sc as scanProto would, its values and shape, if t
// matches it, and reports whether it did.
func (t *protoTemplate) read(sc *repeatScan, body []byte) bool {
	if !t.matches(body) {
		t.misses.Add(1)
		return false
	}
	t.readMatched(sc, body)
	return true
}

// readMatched is read of a body t is known to match.
func (t *protoTemplate) readMatched(sc *repeatScan, body []byte) {
	sc.values, sc.texts = sc.values[:0], sc.texts[:0]
	for _, i := range t.order {
		s := t.slots[i]
		v := body[s.off : s.off+uint32(s.width)]
		if s.count {
			x, _ := protowire.ConsumeVarint(v)
			sc.values = append(sc.values, float64(x))
		} else {
			sc.values = append(sc.values, math.Float64frombits(binary.LittleEndian.Uint64(v)))
		}
	}
	sc.shape = t.shape
	t.hits.Add(1)
}
