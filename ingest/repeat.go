package ingest

import (
	"bytes"
	"hash/maphash"
	"net/http"
	"sync"
	"unsafe"

	"github.com/pushring/pushring/internal/textfloat"
	"github.com/pushring/pushring/store"
)

// Repeater is what a store offers for repeated pushes (store.Store does;
// docs/design.md, "Repeated pushes"): a push whose body is its
// group's last one but for the values is applied as new values, without
// being parsed and checked again.
type Repeater interface {
	// ApplyRepeat applies r if it repeats the shape of its group's last
	// push, and reports whether it did; if not, nothing changed.
	ApplyRepeat(r store.Repeat) bool
	// LearnRepeat records r's shape once r was applied the full way;
	// series()[i] is the text of the i-th sample line before its value,
	// asked for only when the store matches the lines.
	LearnRepeat(r store.Repeat, series func() [][]byte)
}

// repeatScan is a body with its sample values taken out: the hash of the
// rest (the shape), the values, and each sample line's text before its
// value (for protobuf, written only when asked). The slices point into
// the body or the scan's buffers.
type repeatScan struct {
	shape  uint64
	values []float64
	// texts holds, for the text scan, each value's token where it is a
	// number as the store writes it (textfloat.Canonical), and nil
	// elsewhere; the value of such a token is not read (it is 0 in
	// values) until LearnRepeat needs it (readTexts).
	texts  [][]byte
	series [][]byte
	// The protobuf scan's (repeatproto.go): the series it writes when
	// asked, and the metric it is reading.
	seriesBuf  []byte
	seriesEnds []int
	shapeBuf   []byte
	metric     protoMetric
	// Where scanProto found the values in base, the body it read
	// (repeattemplate.go): slots in the body's order, and for each value
	// its slot.
	base     []byte
	slots    []protoSlot
	order    []int32
	badSlots bool   // a value was not found in base
	proto    bool   // the body is delimited protobuf
	body     []byte // the body scanned
	// byTemplate: the values and shape came from a template, not a scan.
	byTemplate bool
}

// repeatSeed makes shapes unpredictable from outside the process: a
// pusher cannot make two different bodies of its own hash alike.
var repeatSeed = maphash.MakeSeed()

var repeatScans = sync.Pool{New: func() any { return &repeatScan{} }}

// maxKeptShapeBytes bounds the shape buffer a pooled repeatScan keeps.
const maxKeptShapeBytes = 64 << 10

// maxRepeatLines and maxShapeBytes bound a repeated push: a body with
// more sample lines, or more bytes besides its values, goes the full way,
// whose memory the api charges to the push (DecodeCost). The scan stops
// there, so what it allocates stays small beside that charge.
const (
	maxRepeatLines = 4096
	maxShapeBytes  = 256 << 10
)

// tooLarge reports whether the body scanned so far is past the bounds
// of a repeated push.
func (sc *repeatScan) tooLarge() bool {
	return len(sc.values) >= maxRepeatLines || len(sc.shapeBuf) >= maxShapeBytes
}

func putRepeatScan(sc *repeatScan) {
	clear(sc.series)
	clear(sc.texts)
	sc.texts = sc.texts[:0]
	sc.body, sc.base, sc.byTemplate, sc.badSlots = nil, nil, false, false
	m := &sc.metric
	clear(m.labels)
	if cap(sc.values) > maxRepeatLines {
		sc.values, sc.texts, sc.series, sc.seriesEnds = nil, nil, nil, nil
	}
	if cap(sc.slots) > maxRepeatLines || cap(sc.order) > maxRepeatLines {
		sc.slots, sc.order = nil, nil
	}
	if cap(sc.seriesBuf) > 64<<10 {
		sc.seriesBuf = nil
	}
	if cap(sc.shapeBuf) > maxKeptShapeBytes {
		sc.shapeBuf = nil
	}
	if cap(m.labels) > 64 || cap(m.buckets) > 256 || cap(m.quantiles) > 256 || cap(m.pairSlots) > 256 {
		*m = protoMetric{}
	}
	repeatScans.Put(sc)
}

// scan reads body: every line must end in '\n'; a line that is empty or
// starts with '#' is part of the shape as it is; any other is a sample
// line whose last blank-separated token is its value (a token
// parseTextFloat reads; a line with a timestamp has the timestamp there,
// and cannot repeat a stored shape, which has none) and whose text before
// that token is part of the shape. It reports false for a body that cannot
// repeat a shape, or is past the bounds of tooLarge: the full way decides
// about it.
func (sc *repeatScan) scan(body []byte) bool {
	sc.values, sc.texts, sc.series, sc.shapeBuf = sc.values[:0], sc.texts[:0], sc.series[:0], sc.shapeBuf[:0]
	// The shape is the body with every value token taken out, so that a
	// sample line is its text before the value, its blank included, and
	// '\n'. No part but the newlines holds a '\n', so the bytes split
	// into the body's lines in one way only: equal bytes are equal bodies
	// but for the values. They are copied out and hashed once.
	for rest := body; len(rest) > 0; {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return false
		}
		line := rest[:nl]
		if len(line) == 0 || line[0] == '#' {
			sc.shapeBuf = append(sc.shapeBuf, rest[:nl+1]...)
			rest = rest[nl+1:]
			continue
		}
		rest = rest[nl+1:]
		sp := lastBlank(line)
		if sp < 0 {
			return false
		}
		if sc.tooLarge() {
			return false
		}
		if token := line[sp+1:]; textfloat.Canonical(token) {
			sc.values = append(sc.values, 0)
			sc.texts = append(sc.texts, token)
		} else {
			v, ok := parseTextFloat(unsafe.String(unsafe.SliceData(token), len(token)))
			if !ok {
				return false
			}
			sc.values = append(sc.values, v)
			sc.texts = append(sc.texts, nil)
		}
		series := line[:sp]
		for len(series) > 0 && isBlank(series[len(series)-1]) {
			series = series[:len(series)-1]
		}
		sc.series = append(sc.series, series)
		sc.shapeBuf = append(sc.shapeBuf, line[:sp+1]...)
		sc.shapeBuf = append(sc.shapeBuf, '\n')
	}
	sc.shape = maphash.Bytes(repeatSeed, sc.shapeBuf)
	return len(sc.values) > 0
}

// lastBlank returns the index of line's last space or tab, or -1.
func lastBlank(line []byte) int {
	for i := len(line) - 1; i >= 0; i-- {
		if isBlank(line[i]) {
			return i
		}
	}
	return -1
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// scanRepeat scans r's body for the store's repeated pushes: nil when the
// store has none or the body was not read ahead by the api.
func (in *Ingester) scanRepeat(r Parsed) *repeatScan {
	if in.repeat == nil {
		return nil
	}
	b, ok := r.Body.(*Body)
	if !ok {
		return nil
	}
	raw, err := b.Bytes()
	if err != nil {
		return nil
	}
	sc := repeatScans.Get().(*repeatScan)
	sc.proto = isDelimitedProto(r.ContentType)
	sc.body = raw
	if sc.proto {
		if t := b.template; t != nil && len(raw) == len(b.buf) { // DecodeCost compared them
			t.readMatched(sc, raw)
			sc.byTemplate = true
			return sc
		}
		if t := templates.find(raw); t != nil && t.read(sc, raw) {
			sc.byTemplate = true
			return sc
		}
		ok = sc.scanProto(raw, false)
	} else {
		ok = sc.scan(raw)
	}
	if !ok {
		putRepeatScan(sc)
		return nil
	}
	return sc
}

// readTexts reads the values scan left to their tokens, for LearnRepeat,
// which compares each value with its stored line.
func (sc *repeatScan) readTexts() {
	for i, t := range sc.texts {
		if t != nil {
			sc.values[i], _ = parseTextFloat(unsafe.String(unsafe.SliceData(t), len(t)))
		}
	}
}

// seriesOf returns the series of sc's lines, for LearnRepeat: the text's
// as scan found them, or the protobuf's written by a second scan.
func (sc *repeatScan) seriesOf() [][]byte {
	if sc.proto && !sc.scanProto(sc.body, true) {
		return nil
	}
	return sc.series
}

// repeatOf is the store.Repeat of a push request scanned as sc.
func (in *Ingester) repeatOf(r Parsed, sc *repeatScan) store.Repeat {
	return store.Repeat{Key: r.key, Replace: r.Method == http.MethodPut, Shape: sc.shape, Values: sc.values, Texts: sc.texts, Time: in.now(), TTL: r.ttl}
}
