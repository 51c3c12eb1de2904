package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"sync"
)

// readChunk is how much a body buffer grows by at a time while it is read:
// every growth is charged to the caller's budget before it happens, so a
// body is charged for what it has sent, never for what it announced.
const readChunk = 32 << 10

// Body is a push body read and decompressed ahead of Handle. The api reads
// every push body this way before the push takes an admission slot, so a
// client that sends slowly holds its own connection and nothing else
// (shared/DESIGN.md decision 16). Handle decodes it in place, without a
// second copy. A refusal of the body itself (over --push.max-body-bytes, a
// broken gzip stream, an unsupported Content-Encoding) is kept in the Body
// and returned by Read, so Handle reports it in its usual order of checks:
// a bad path is still answered before a bad body.
//
// A Body is read by one goroutine. Its buffer is charged to the caller's
// budget while the Body lives. An uncompressed body of a known size of
// 1,024 to 65,535 bytes (most pushes: client libraries send a
// Content-Length) is read into a buffer of a pool (bodyBufs), which
// Release hands back once the push is done.
type Body struct {
	buf []byte
	off int
	err error
	// template is the protobuf template DecodeCost found to match buf,
	// or nil.
	template *protoTemplate
	// pooled is the pool's buffer buf is, or nil.
	pooled *bodyBuf
}

// Body buffers of 2^minBodyClass to 2^maxBodyClass bytes are pooled,
// one pool per power of two. A smaller body costs little to allocate; a
// larger one is rare, and would keep more memory idle than it saves.
const (
	minBodyClass = 11 // 2 KiB
	maxBodyClass = 16 // 64 KiB
)

// bodyBuf is a pooled body buffer (a pointer, so that a Put does not
// allocate).
type bodyBuf struct{ b []byte }

// bodyBufs are the body buffers that Release handed back, by class. The
// pools save allocating, zeroing and collecting a buffer per push, about
// 7 % of a text push's CPU under load (BENCHMARKS.md, "Pooled push
// bodies"). What they hold idle is charged to no budget, like the pooled
// parsers' slabs (textparse.go): in each class at most as many buffers as
// bodies of that class were read at once (each charged while it was
// read), and what stays idle goes to the collector within two
// collections.
var bodyBufs [maxBodyClass - minBodyClass + 1]sync.Pool

// bodyClass is the class of a buffer that holds n bytes, or -1 if such a
// buffer is not pooled.
func bodyClass(n int64) int {
	if n <= 1<<(minBodyClass-1) || n > 1<<maxBodyClass {
		return -1
	}
	return max(bits.Len64(uint64(n-1)), minBodyClass) - minBodyClass
}

// getBodyBuf returns an empty pooled buffer of class c: its bytes are
// those of an earlier body, which the Body never hands out (only what it
// reads over them).
func getBodyBuf(c int) *bodyBuf {
	if v, ok := bodyBufs[c].Get().(*bodyBuf); ok {
		return v
	}
	return &bodyBuf{b: make([]byte, 0, 1<<(c+minBodyClass))}
}

// errReleased is what a Body answers once it was released.
var errReleased = errors.New("push body used after it was released")

// Release hands b's buffer back to its pool, if it came from one, for a
// later push's body: the caller must not use b, or any slice of it, after
// Release (b answers every read with an error). Call it only once nothing
// of the push refers to the body any more: a push that was applied or
// forwarded, whose answer holds nothing of it (a Store keeps nothing of a
// push; a forward copies the body into its request). With poisonReleased
// (tests) the buffer, pooled or not, is overwritten instead, and not
// reused: whatever still read it would read 0xff bytes, which no text
// body holds and no protobuf body holds in their place.
func (b *Body) Release() {
	buf, p := b.buf, b.pooled
	b.buf, b.off, b.err, b.template, b.pooled = nil, 0, errReleased, nil, nil
	if poisonReleased.Load() {
		full := buf[:cap(buf)]
		for i := range full {
			full[i] = 0xff
		}
		return
	}
	if p != nil {
		p.b = p.b[:0]
		bodyBufs[bodyClass(int64(cap(p.b)))].Put(p)
	}
}

// Read reads the decompressed body, or returns the refusal of the body.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.off >= len(b.buf) {
		return 0, io.EOF
	}
	n := copy(p, b.buf[b.off:])
	b.off += n
	return n, nil
}

// Len returns the size of the decompressed body read so far.
func (b *Body) Len() int { return len(b.buf) }

// Err returns the refusal of the body, or nil.
func (b *Body) Err() error { return b.err }

// Bytes returns the unread body, or the refusal. The caller must not
// modify it: it is the Body's own buffer, handed out without a copy (a
// push forwarded to its owner ships these bytes as they are).
func (b *Body) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.buf[b.off:len(b.buf):len(b.buf)], nil // an append copies
}

// ForwardedBody returns b, a whole push body that another peer read and
// decompressed before it forwarded the push here, as a Body read ahead:
// a push in it can repeat its group's last one (repeat.go) as if it
// had arrived here. A body over this peer's --push.max-body-bytes stays a
// plain reader, so that it is refused as any other.
func (in *Ingester) ForwardedBody(b []byte) io.Reader {
	if max := in.cfg.MaxBodyBytes; max > 0 && int64(len(b)) > max {
		return bytes.NewReader(b)
	}
	return &Body{buf: b}
}

// Content-Encodings a push may carry (case-insensitive). "identity" and no
// header mean the body is not compressed.
var supportedEncodings = []string{"gzip", "snappy", "identity"}

// ReadBody reads r whole into a Body, decompressed per encoding and bounded
// by maxBytes after decompression (0: no limit). Before its buffer grows,
// ReadBody calls charge with the number of bytes it is about to add; an
// error from charge stops the read and is returned as is.
//
// An error reading r itself (a read deadline passed, the client went away)
// is returned wrapped; the Body is then nil. Any refusal of the body's
// content is kept in the returned Body instead (see Body). A nil r is an
// empty body.
//
// size is the body's Content-Length, -1 if unknown: an uncompressed body
// of a known size within maxBytes is read into a buffer of that size
// (plus the byte that tells its end; a pooled one, rounded up to its
// class, if it is one bodyClass pools), instead of one grown from
// readChunk.
func ReadBody(r io.Reader, encoding string, maxBytes, size int64, charge func(int64) error) (*Body, error) {
	b := &Body{}
	if size >= 0 && (maxBytes <= 0 || size <= maxBytes) && (encoding == "" || strings.EqualFold(encoding, "identity")) {
		n, class := size+1, bodyClass(size+1)
		if class >= 0 {
			n = 1 << (class + minBodyClass)
		}
		if err := charge(n); err != nil {
			return nil, err
		}
		if class >= 0 {
			b.pooled = getBodyBuf(class)
			b.buf = b.pooled.b
		} else {
			b.buf = make([]byte, 0, n)
		}
	}
	if r == nil {
		r = emptyBody{}
	}
	if err := b.fill(r, encoding, maxBytes, charge); err != nil {
		return nil, err
	}
	return b, nil
}

// fill reads r into b; see ReadBody for which errors it returns.
func (b *Body) fill(r io.Reader, encoding string, maxBytes int64, charge func(int64) error) error {
	if !supportedEncoding(encoding) {
		b.err = unsupportedEncoding(encoding)
		return nil
	}
	d := getDecoder() // its readers wrap r for this read
	defer putDecoder(d)
	d.src = transportReader{r: r}
	zr, over, err := d.open(&d.src, encoding, maxBytes)
	if err == nil {
		d.lim.reset(zr, maxBytes, over)
		err = b.readFrom(&d.lim, maxBytes, charge)
	}
	if err == nil && d.src.err == nil {
		return nil
	}
	var ce *chargeError
	switch {
	case errors.As(err, &ce):
		return ce.err
	case d.src.err != nil:
		return fmt.Errorf("read push body: %w", d.src.err)
	}
	b.err = asBadRequest(err)
	return nil
}

// readFrom appends r to b.buf until EOF, charging every growth first.
func (b *Body) readFrom(r io.Reader, maxBytes int64, charge func(int64) error) error {
	for {
		if len(b.buf) == cap(b.buf) {
			grown := make([]byte, len(b.buf), nextCap(cap(b.buf), maxBytes))
			if err := charge(int64(cap(grown) - cap(b.buf))); err != nil {
				return &chargeError{err: err}
			}
			copy(grown, b.buf)
			// A pooled buffer outgrown (more than the declared
			// size arrived) is left to the collector: the charge is
			// grown's now.
			b.buf, b.pooled = grown, nil
		}
		n, err := r.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// nextCap is the capacity a full body buffer of capacity c grows to: it
// doubles, by at least a chunk, and never past the one byte over maxBytes
// (if positive) that tells an overrun.
func nextCap(c int, maxBytes int64) int {
	n := max(2*c, c+readChunk)
	if maxBytes > 0 && int64(n) > maxBytes+1 {
		n = int(maxBytes + 1)
	}
	return max(n, c+1)
}

// chargeError carries a refusal of the budget out of the read loop,
// distinct from any error of the body.
type chargeError struct{ err error }

func (e *chargeError) Error() string { return e.err.Error() }

// transportReader remembers the first error of the connection beneath the
// decompressors, so a read deadline is told apart from a corrupt stream.
type transportReader struct {
	r   io.Reader
	err error
}

func (t *transportReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

func supportedEncoding(encoding string) bool {
	if encoding == "" {
		return true
	}
	for _, e := range supportedEncodings {
		if strings.EqualFold(encoding, e) {
			return true
		}
	}
	return false
}

// unsupportedEncoding is the 415 answer to a Content-Encoding this peer
// cannot decode. The Pushgateway parses such a body as if it were not
// compressed, which turns a br or zstd body into a parse error at best
// (docs/compat.md).
func unsupportedEncoding(encoding string) error {
	return &requestError{kind: ErrUnsupportedEncoding, cause: fmt.Errorf(
		"unsupported Content-Encoding %q; send the body uncompressed or with one of: %s",
		encoding, strings.Join(supportedEncodings, ", "))}
}
