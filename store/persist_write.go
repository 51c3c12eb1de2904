package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The file is written as a stream, one group at a time, in the encoding
// encoding/gob gives the single map[string]fileGroup value (see persist.go).
// gob puts two numbers in front of the groups that are only known at the
// end: the byte count of the value's message and the number of map entries.
// Both are written as gob unsigned integers in their 9-byte form (a byte
// holding -8, then 8 big-endian bytes), which every gob decoder reads as it
// reads the short form (encoding/gob reads the byte count and then that many
// bytes, and does not ask for the shortest one). So they keep a fixed place
// at the start of the value, and are filled in once the last group is out.
//
// The rest is gob's own encoding, by hand: a string is its length and its
// bytes; a map its length and its entries; a struct the fields that are not
// zero, each preceded by the difference between its field number and the
// previous one, ending with a 0; a GobEncoder's value (time.Time,
// protoFamily) its length and its bytes. The type definitions in front of
// the value are encoding/gob's, taken from encoding an empty map once.

// fixedUintLen is the length of a 9-byte gob unsigned integer.
const fixedUintLen = 9

// fileHeader is the prelude of every persistence file: the type
// definitions, and the type id of map[string]fileGroup as gob encodes it
// at the start of the value's message.
type fileHeader struct {
	types  []byte
	typeID []byte
}

var persistHeader = sync.OnceValues(buildFileHeader)

// buildFileHeader encodes an empty map with encoding/gob and splits the
// result: every message but the last defines a type; the last is the value,
// its type id followed by the singleton field delta (0) and the length (0).
func buildFileHeader() (fileHeader, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(map[string]fileGroup{}); err != nil {
		return fileHeader{}, err
	}
	b := buf.Bytes()
	last := 0
	for off := 0; off < len(b); {
		n, w, err := readGobUint(b[off:])
		if err != nil || off+w+int(n) > len(b) {
			return fileHeader{}, errors.New("persistence file header: gob framing not understood")
		}
		last = off
		off += w + int(n)
	}
	n, w, _ := readGobUint(b[last:])
	msg := b[last+w : last+w+int(n)]
	if len(msg) < 3 || !bytes.HasSuffix(msg, []byte{0, 0}) {
		return fileHeader{}, errors.New("persistence file header: gob value not understood")
	}
	return fileHeader{types: b[:last], typeID: msg[:len(msg)-2]}, nil
}

// readGobUint reads a gob unsigned integer and returns it and its width.
func readGobUint(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, errors.New("short gob integer")
	}
	if b[0] <= 0x7f {
		return uint64(b[0]), 1, nil
	}
	n := -int(int8(b[0]))
	if n > 8 || len(b) < 1+n {
		return 0, 0, errors.New("bad gob integer")
	}
	var x uint64
	for _, c := range b[1 : 1+n] {
		x = x<<8 | uint64(c)
	}
	return x, 1 + n, nil
}

// appendGobUint appends x in gob's shortest form.
func appendGobUint(b []byte, x uint64) []byte {
	if x <= 0x7f {
		return append(b, byte(x))
	}
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], x)
	i := 0
	for be[i] == 0 {
		i++
	}
	b = append(b, byte(-(8 - i)))
	return append(b, be[i:]...)
}

// putFixedGobUint writes x as a 9-byte gob unsigned integer.
func putFixedGobUint(b []byte, x uint64) {
	b[0] = 0xf8 // -8
	binary.BigEndian.PutUint64(b[1:], x)
}

func appendGobString(b []byte, s string) []byte {
	return append(appendGobUint(b, uint64(len(s))), s...)
}

func appendGobBytes(b, s []byte) []byte {
	return append(appendGobUint(b, uint64(len(s))), s...)
}

// appendGobTime appends t as gob sends a time.Time field (its
// MarshalBinary bytes); the caller leaves out the zero Time.
func appendGobTime(b []byte, t time.Time) ([]byte, error) {
	var buf [16]byte // version 2 of time's binary encoding: 15 or 16 bytes
	tb, err := t.AppendBinary(buf[:0])
	if err != nil {
		return b, err
	}
	return appendGobBytes(b, tb), nil
}

// gobStruct appends the fields of one gob struct value.
type gobStruct struct {
	b    []byte
	last int
}

func newGobStruct(b []byte) gobStruct { return gobStruct{b: b, last: -1} }

// field starts field i; fields come in increasing order.
func (s *gobStruct) field(i int) {
	s.b = appendGobUint(s.b, uint64(i-s.last))
	s.last = i
}

// end closes the struct and returns the bytes.
func (s *gobStruct) end() []byte { return append(s.b, 0) }

// Field numbers of fileGroup and fileFamily, in declaration order.
const (
	fgLabels = iota
	fgMetrics
	fgVersion
	fgDeadline
)

const (
	ffTimestamp = iota
	ffFamily
)

// fileWriter writes one persistence file: newFileWriter writes the header,
// group adds one entry, finish fills in the counts and makes the file
// durable.
type fileWriter struct {
	f       *os.File
	sf      *syncingFile // f, synced on the side as it grows
	w       *bufio.Writer
	entries uint64
	size    uint64 // bytes of the value's message written so far
	hdr     fileHeader
	// lenAt is the file offset of the value's 9-byte message length; the
	// 9-byte entry count follows the type id and the field delta.
	lenAt int64
}

func newFileWriter(f *os.File) (*fileWriter, error) {
	hdr, err := persistHeader()
	if err != nil {
		return nil, err
	}
	sf := &syncingFile{f: f}
	fw := &fileWriter{f: f, sf: sf, w: bufio.NewWriterSize(sf, 256<<10), hdr: hdr, lenAt: int64(len(hdr.types))}
	var pre []byte
	pre = append(pre, hdr.types...)
	pre = append(pre, make([]byte, fixedUintLen)...) // message length, filled in by finish
	pre = append(pre, hdr.typeID...)
	pre = append(pre, 0)                             // singleton field delta
	pre = append(pre, make([]byte, fixedUintLen)...) // entry count, filled in by finish
	fw.size = uint64(len(hdr.typeID) + 1 + fixedUintLen)
	_, err = fw.w.Write(pre)
	return fw, err
}

// writeEntries writes n map entries already encoded in b.
// A large b (a batch of the store's groups) goes to the file as it is,
// after what the buffer holds, instead of being copied through the buffer.
func (fw *fileWriter) writeEntries(b []byte, n uint64) error {
	fw.entries += n
	fw.size += uint64(len(b))
	if len(b) < fw.w.Size()/4 {
		_, err := fw.w.Write(b)
		return err
	}
	if err := fw.w.Flush(); err != nil {
		return err
	}
	_, err := fw.sf.Write(b)
	return err
}

// appendEntry appends one map entry to b: the encoded key and a fileGroup
// whose Metrics are fams, nFams entries already encoded.
func appendEntry(b []byte, key GroupKey, version uint64, deadline time.Time, fams []byte, nFams int) ([]byte, error) {
	s := entryHead(b, key, nFams)
	s.b = append(s.b, fams...)
	return s.entryTail(b, key, version, deadline)
}

// entryHead starts one map entry in b: the encoded key, then the fileGroup
// up to its Metrics, whose nFams entries (appendFamily) the caller appends
// to the returned struct's bytes before it calls entryTail.
func entryHead(b []byte, key GroupKey, nFams int) gobStruct {
	s := newGobStruct(appendGobString(b, key.String()))
	if enc := key.String(); enc != "" {
		s.field(fgLabels)
		n := strings.Count(enc, sep) + 1 // name sep value (sep name sep value)...
		s.b = appendGobUint(s.b, uint64(n/2))
		for range n {
			part, rest, _ := strings.Cut(enc, sep)
			s.b, enc = appendGobString(s.b, part), rest
		}
	}
	if nFams > 0 {
		s.field(fgMetrics)
		s.b = appendGobUint(s.b, uint64(nFams))
	}
	return s
}

// entryTail ends the entry entryHead started in s and returns its bytes, or
// b, the bytes before the entry, and an error.
func (s *gobStruct) entryTail(b []byte, key GroupKey, version uint64, deadline time.Time) ([]byte, error) {
	if version != 0 {
		s.field(fgVersion)
		s.b = appendGobUint(s.b, version)
	}
	if deadline != (time.Time{}) {
		s.field(fgDeadline)
		var err error
		if s.b, err = appendGobTime(s.b, deadline); err != nil {
			return b, fmt.Errorf("%w: group %q: deadline: %w", ErrInvalidGroup, key.String(), err)
		}
	}
	return s.end(), nil
}

// appendFamily appends one entry of a group's Metrics map to b: the family
// name, then a fileFamily holding t and the family's protobuf encoding pb.
func appendFamily(b []byte, name string, t time.Time, pb []byte) ([]byte, error) {
	s := newGobStruct(appendGobString(b, name))
	if t != (time.Time{}) {
		s.field(ffTimestamp)
		var err error
		if s.b, err = appendGobTime(s.b, t); err != nil {
			return b, fmt.Errorf("family %q: time: %w", name, err)
		}
	}
	s.field(ffFamily)
	s.b = appendGobBytes(s.b, pb)
	return s.end(), nil
}

// finish flushes, fills in the message length and the entry count, syncs
// and closes the file. The file is closed on every path.
func (fw *fileWriter) finish() error {
	err := fw.w.Flush()
	if err != nil {
		err = fmt.Errorf("write persistence file: %w", err)
	} else if err = fw.patch(); err != nil {
		err = fmt.Errorf("write persistence file: %w", err)
	} else if err = fw.sf.wait(); err != nil {
		err = fmt.Errorf("sync persistence file: %w", err)
	} else if err = fw.f.Sync(); err != nil {
		err = fmt.Errorf("sync persistence file: %w", err)
	}
	fw.sf.wait() // after an error above: the sync on the side must end before the close
	if cerr := fw.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close persistence file: %w", cerr)
	}
	return err
}

func (fw *fileWriter) patch() error {
	var n [fixedUintLen]byte
	putFixedGobUint(n[:], fw.size)
	if _, err := fw.f.WriteAt(n[:], fw.lenAt); err != nil {
		return err
	}
	putFixedGobUint(n[:], fw.entries)
	_, err := fw.f.WriteAt(n[:], fw.lenAt+fixedUintLen+int64(len(fw.hdr.typeID))+1)
	return err
}

// writeFileWith replaces the file at path, crash-safely, with the groups
// that fill writes: to a temporary file in the same directory, which is
// synced, renamed over path, and the directory is synced. A crash at any
// point leaves either the old file or the new one, never a mix. The file
// mode is 0600 (the Pushgateway's). On any error the temporary file is
// removed and the old file is untouched.
func writeFileWith(path string, fill func(*fileWriter) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".in_progress.*")
	if err != nil {
		return fmt.Errorf("create temporary persistence file: %w", err)
	}
	fw, err := newFileWriter(f)
	if err == nil {
		err = fill(fw)
	}
	if err != nil {
		if fw != nil {
			fw.sf.wait()
		}
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := fw.finish(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("replace persistence file: %w", err)
	}
	return syncDir(dir)
}

// appendFileProtobuf appends the protobuf encoding of f as a MetricFamily
// to b, fields in number order as proto.Marshal writes them: name, help,
// type, the metrics (the kept or cached bytes, else rendered into b and not
// kept), unit.
func (f *family) appendFileProtobuf(b []byte, sc *textScratch) ([]byte, error) {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, f.name)
	if f.hasHelp() {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, f.help)
	}
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(f.typ()))
	if p := f.kept(); p != nil {
		b = append(b, p...)
	} else if f.series() > 0 {
		var err error
		if b, err = f.renderProtobuf(b, sc); err != nil {
			return b, err
		}
	}
	if f.unit != nil {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, *f.unit)
	}
	return b, nil
}
