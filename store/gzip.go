package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/klauspost/compress/flate"
	dto "github.com/prometheus/client_model/go"
)

// WriteExpositionGzip is WriteExposition gzipped, without compressing
// again what did not change since the last gzipped scrape.
//
// The answer is one gzip member (any gzip reader takes it, not only those
// that read concatenated members): its deflate stream is a run of
// segments, each compressed on its own with an empty history and ended on
// a byte boundary by a sync flush, so a segment made by one scrape can be
// copied into the stream of the next. The stored families of a text scrape
// are cut into chunks: the families of one name of up to chunkMembers
// consecutive groups, cut where a group's key hash says so (group.split),
// so a group that comes or goes changes only its own chunk. Each chunk is
// one segment, kept in a table (gzipChunks) under the id of its first
// family with the ids of all, while the render cache has room; a chunk
// whose families are the same ones next time is copied. Headers, the
// gateway's own families and the other formats are compressed as they
// are written, one segment between two chunks. The CRC-32 and size of the
// trailer are computed over the text as it is written, and for a kept
// chunk combined from the chunk's own (crc.go).
//
// A chunk compresses as well as the stream does within it; what is lost
// are matches across chunk and segment boundaries (BENCHMARKS.md has the
// sizes).
func (s *Store) WriteExpositionGzip(w io.Writer, f Format, extra []*dto.MetricFamily) (err error) {
	z := s.newGzipStream(w, f.Type() == FormatText)
	defer s.putGzipStream(z)
	defer func() {
		if err != nil {
			s.abandonChunks(z)
		} else {
			s.finishChunks(z)
		}
	}()
	if err := z.header(); err != nil {
		return fmt.Errorf("write exposition: %w", err)
	}
	if err := s.writeExposition(z, z, f, extra); err != nil {
		return err
	}
	if err := z.close(); err != nil {
		return fmt.Errorf("write exposition: %w", err)
	}
	return nil
}

// gzipStream writes one gzip member made of deflate segments. As an
// io.Writer it takes bytes to be compressed with the next segment; family
// writes the stored segment of a family.
type gzipStream struct {
	out   *bufio.Writer
	fw    *flate.Writer
	seg   bytes.Buffer // fw's output for one segment
	live  []byte       // bytes written since the last segment
	parts [][]byte     // scratch: the texts of a chunk
	lines []byte       // scratch: the front-coded texts of a chunk, decoded
	crc   uint32
	size  uint32 // ISIZE: the uncompressed size modulo 2^32
	cache *renderCache
	// table holds the chunks the last gzipped scrape kept; next collects
	// those this one uses or makes, and replaces table at its end.
	table *chunkTable
	next  *chunkTable
}

// The header of the member: deflate, no name or time, XFL 4 (the fastest
// compression, as gzip.BestSpeed writes it), OS unknown.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}

// finalBlock ends a deflate stream that is on a byte boundary: an empty
// stored block with BFINAL set.
var finalBlock = []byte{0x01, 0x00, 0x00, 0xff, 0xff}

// newGzipStream returns a stream to w; with build, it may build the next
// chunk table. Only text scrapes write chunks, so only they build: a
// scrape in another format would leave an empty table behind.
func (s *Store) newGzipStream(w io.Writer, build bool) *gzipStream {
	z, _ := s.gzips.Get().(*gzipStream)
	if z == nil {
		// BestSpeed, as the Pushgateway's answer and the api's: the text
		// compresses well even at the fastest level.
		fw, _ := flate.NewWriter(io.Discard, flate.BestSpeed) // the level is valid
		z = &gzipStream{out: bufio.NewWriterSize(io.Discard, scrapeBufferSize), fw: fw}
	}
	z.out.Reset(w)
	z.live, z.crc, z.size, z.cache = z.live[:0], 0, 0, &s.cache
	z.table = s.gzChunks.Load()
	// One text scrape at a time builds the next table; one that runs
	// beside it reads the table and keeps nothing.
	if build && s.gzBuild.TryLock() {
		z.table = s.gzChunks.Load() // the builder's own writes are all in
		z.next = &chunkTable{byFirst: make(map[uint64]*chunk, z.table.len())}
	}
	return z
}

// finishChunks makes the chunks this scrape used or made (if it built)
// the table of the next, and gives the room of the others back to the
// render cache.
func (s *Store) finishChunks(z *gzipStream) {
	if z.next == nil {
		return
	}
	s.gzChunks.Store(z.next)
	s.cache.used.Add(-(z.table.bytesOrZero() - z.next.carried))
	s.gzBuild.Unlock()
}

// abandonChunks undoes a failed build: the table stays, and the room of
// the chunks made for the next one is given back.
func (s *Store) abandonChunks(z *gzipStream) {
	if z.next == nil {
		return
	}
	s.cache.used.Add(-(z.next.bytes - z.next.carried))
	s.gzBuild.Unlock()
}

func (s *Store) putGzipStream(z *gzipStream) {
	z.out.Reset(io.Discard)
	z.fw.Reset(io.Discard)
	if z.seg.Cap() > maxPooledSegment {
		z.seg = bytes.Buffer{}
	}
	if cap(z.live) > maxPooledSegment {
		z.live = nil
	}
	z.cache, z.table, z.next = nil, nil, nil
	s.gzips.Put(z)
}

// maxPooledSegment is the largest buffer a pooled gzipStream keeps.
const maxPooledSegment = 1 << 20

func (z *gzipStream) header() error {
	_, err := z.out.Write(gzipHeader)
	return err
}

// Write takes p to be compressed with the next segment.
func (z *gzipStream) Write(p []byte) (int, error) {
	z.live = append(z.live, p...)
	if len(z.live) >= scrapeBufferSize {
		if err := z.flushLive(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// chunks writes fams, the stored families of one name in group key order,
// chunk by chunk. mems[i] is what the slot of fams[i] holds: its size, id
// and whether a chunk may end after it. A kept chunk is found and copied
// from mems alone; only the families of a chunk compressed anew are read.
func (z *gzipStream) chunks(fams []*family, mems []member) error {
	if !slices.ContainsFunc(mems, func(m member) bool { return m.size > 0 }) {
		return nil // the header stays with the live bytes
	}
	if err := z.flushLive(); err != nil {
		return err
	}
	start, size := 0, 0
	for i, m := range mems {
		if m.size == maxMemberSize {
			size += fams[i].textSize() // 4 GiB or more: not in the member
		} else {
			size += int(m.size)
		}
		if i+1 < len(mems) && !m.split && i+1-start < chunkMembers && size < chunkBytes {
			continue
		}
		if err := z.chunk(fams[start:i+1], mems[start:i+1], size); err != nil {
			return err
		}
		start, size = i+1, 0
	}
	return nil
}

// A chunk ends after a group whose split is set (1 in 128 on average), or
// at chunkMembers families, or past chunkBytes of text.
const (
	chunkMembers = 256
	chunkBytes   = 64 << 10
)

// chunk writes the segment of fams (text bytes in all): the one kept by
// an earlier scrape if it holds the same families, else it compresses
// them and keeps that.
func (z *gzipStream) chunk(fams []*family, mems []member, text int) error {
	if text == 0 {
		return nil
	}
	if c := z.table.lookup(mems); c != nil {
		if z.next != nil && z.next.add(c) {
			z.next.carried += c.cost()
		}
		z.crc = crcCombine(z.crc, c.crc, c.op)
		z.size += uint32(c.n) //nolint:gosec // ISIZE is the size modulo 2^32
		_, err := z.out.Write(c.seg)
		return err
	}
	var crc uint32
	z.parts = z.parts[:0]
	lines := slices.Grow(z.lines[:0], text) // room for every text, decoded
	rest := lines
	for _, f := range fams {
		t := f.text(&rest) // front-coded texts are decoded into rest
		rest = rest[len(rest):]
		crc = crc32.Update(crc, crc32.IEEETable, t)
		z.parts = append(z.parts, t)
	}
	op := shiftOp(uint64(text))
	z.crc = crcCombine(z.crc, crc, op)
	z.size += uint32(text) //nolint:gosec // ISIZE is the size modulo 2^32
	seg, err := z.deflate(z.parts...)
	clear(z.parts) // hold no family's data past the scrape; z.lines holds only copies
	if cap(lines) <= 2*chunkBytes {
		z.lines = lines[:0]
	} else {
		z.lines = nil // a chunk of one large family: not kept for the next
	}
	if err != nil {
		return err
	}
	if z.next != nil && z.next.byFirst[mems[0].id] == nil && z.cache.reserve(int(chunkCost(len(mems), len(seg)))) {
		c := newChunk(mems, seg)
		c.crc, c.op, c.n = crc, op, uint64(text)
		z.next.add(c)
	}
	_, err = z.out.Write(seg)
	return err
}

// flushLive writes the bytes written since the last segment as a segment
// of their own: compressed, or as a stored block when they are few (a
// family's HELP and TYPE lines between two chunks), where building a
// Huffman code would cost more than the bytes it saves.
func (z *gzipStream) flushLive() error {
	if len(z.live) == 0 {
		return nil
	}
	z.sum(z.live)
	var err error
	if len(z.live) <= storedMax {
		var hdr [5]byte // BFINAL 0, BTYPE 00, padded to the byte; LEN; NLEN
		binary.LittleEndian.PutUint16(hdr[1:], uint16(len(z.live)))
		binary.LittleEndian.PutUint16(hdr[3:], ^uint16(len(z.live)))
		if _, err = z.out.Write(hdr[:]); err == nil {
			_, err = z.out.Write(z.live)
		}
	} else {
		var seg []byte
		if seg, err = z.deflate(z.live); err == nil {
			_, err = z.out.Write(seg)
		}
	}
	z.live = z.live[:0]
	return err
}

// storedMax is the most live bytes written as a stored block.
const storedMax = 512

// deflate compresses parts, one after the other, as one segment: an empty
// history and a sync flush at the end. The result is valid until the next
// call.
func (z *gzipStream) deflate(parts ...[]byte) ([]byte, error) {
	z.seg.Reset()
	z.fw.Reset(&z.seg)
	for _, p := range parts {
		if _, err := z.fw.Write(p); err != nil {
			return nil, err
		}
	}
	if err := z.fw.Flush(); err != nil {
		return nil, err
	}
	return z.seg.Bytes(), nil
}

func (z *gzipStream) sum(p []byte) {
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(len(p)) //nolint:gosec // ISIZE is the size modulo 2^32 (RFC 1952)
}

// close writes what is left, the final block and the trailer, and flushes.
func (z *gzipStream) close() error {
	if err := z.flushLive(); err != nil {
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], z.crc)
	binary.LittleEndian.PutUint32(trailer[4:], z.size)
	if _, err := z.out.Write(finalBlock); err != nil {
		return err
	}
	if _, err := z.out.Write(trailer[:]); err != nil {
		return err
	}
	return z.out.Flush()
}

// chunkSplit decides group.split: one key in 128, by a remix of its hash
// (the placement uses the hash as it is).
func chunkSplit(k GroupKey) bool {
	return (k.Hash()*0x9e3779b97f4a7c15)>>57 == 0
}

// chunkTable holds kept chunks by the id of their first family. It is
// immutable once a scrape has published it.
type chunkTable struct {
	byFirst map[uint64]*chunk
	bytes   int64 // the cost of every chunk
	carried int64 // the cost of the chunks taken over from the table before
}

// chunk is the segment of some families, their ids, and the CRC-32,
// shiftOp and length of their text.
type chunk struct {
	ids []uint64
	seg []byte
	crc uint32
	op  uint32
	n   uint64
}

// cost is what a kept chunk takes, as the render cache counts it.
func (c *chunk) cost() int64 { return chunkCost(len(c.ids), len(c.seg)) }

// chunkCost is the memory of a kept chunk of n families and seg bytes:
// the segment, the ids, and the chunk and its table entry.
func chunkCost(n, seg int) int64 { return int64(seg + 8*n + 96) }

func newChunk(mems []member, seg []byte) *chunk {
	c := &chunk{ids: make([]uint64, len(mems)), seg: bytes.Clone(seg)}
	for i, m := range mems {
		c.ids[i] = m.id
	}
	return c
}

// lookup returns the chunk of exactly the families of mems, or nil.
func (t *chunkTable) lookup(mems []member) *chunk {
	if t == nil {
		return nil
	}
	c := t.byFirst[mems[0].id]
	if c == nil || len(c.ids) != len(mems) {
		return nil
	}
	for i, m := range mems {
		if c.ids[i] != m.id {
			return nil
		}
	}
	return c
}

func (t *chunkTable) add(c *chunk) bool {
	if _, ok := t.byFirst[c.ids[0]]; ok {
		return false
	}
	t.byFirst[c.ids[0]] = c
	t.bytes += c.cost()
	return true
}

// len returns the number of chunks; a nil table has none.
func (t *chunkTable) len() int {
	if t == nil {
		return 0
	}
	return len(t.byFirst)
}

func (t *chunkTable) bytesOrZero() int64 {
	if t == nil {
		return 0
	}
	return t.bytes
}
