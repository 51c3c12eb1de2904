package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"
	"unsafe"

	"github.com/golang/snappy"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The Content-Type a push must carry to be read as delimited protobuf
// (expfmt.FmtProtoDelim, what client_golang's push package sends).
const (
	protoContentType = protoMediaType + "; proto=" + protoMessage + "; encoding=" + protoEncoding
	protoMediaType   = "application/vnd.google.protobuf"
	protoMessage     = "io.prometheus.client.MetricFamily"
	protoEncoding    = "delimited"
)

// maxPooledBuffer is the largest body buffer kept for reuse: typical pushes
// are a few KiB, and a rare big one should not pin megabytes in the pool.
const maxPooledBuffer = 1 << 20

// Texts of a size overrun, given the limit and the flag that sets it.
const (
	overDecompressed = "push body exceeds the limit of %d bytes after decompression; raise --%s"
	overCompressed   = "compressed push body exceeds the limit of %d bytes; raise --%s"
	overIdentity     = "push body exceeds the limit of %d bytes; raise --%s"
)

// decodeBody reads a push body: delimited protobuf when contentType says
// so, text 0.0.4 otherwise (with utf8Names, --push.enable-utf8-names, the
// text may quote UTF-8 names); gzip or snappy (any case) per
// contentEncoding, none for "" or "identity"; at most maxBytes after
// decompression (0 = no limit). A *Body from ReadBody is decoded as it was
// read, whatever contentEncoding says. Errors wrap ErrBadRequest (their
// text is the Pushgateway's 400 body), ErrTooLarge or
// ErrUnsupportedEncoding. The returned map is never nil on success. It
// also reports how many decompressed bytes it read, for
// the body size histogram.
//
// The body is read completely (never more than the limit) before it is
// parsed, so a body over the limit is always a 413, whatever it holds, and
// the protobuf path can unmarshal in place.
//
// Without pool the caller owns the families. With pool they may live in
// memory kept for the next push: the caller owns them only until it calls
// release, which it must call once (on success) when nothing uses them
// any more.
func decodeBody(body io.Reader, contentType, contentEncoding string, maxBytes int64, utf8Names, pool bool) (map[string]*dto.MetricFamily, func(), int64, error) {
	if b, ok := body.(*Body); ok {
		// Read and decompressed by the api before admission, and never
		// changed afterwards: the parse may point into it.
		raw, err := b.Bytes()
		if err != nil {
			return nil, noRelease, int64(b.Len()), err
		}
		fams, release, err := decodeBytes(raw, contentType, utf8Names, pool, true)
		return fams, release, int64(len(raw)), err
	}
	d := getDecoder()
	defer putDecoder(d)
	if body == nil {
		body = emptyBody{}
	}
	if !supportedEncoding(contentEncoding) {
		return nil, noRelease, 0, unsupportedEncoding(contentEncoding)
	}
	err := d.read(body, contentEncoding, maxBytes)
	n := int64(d.buf.Len())
	if err != nil {
		return nil, noRelease, n, asBadRequest(err)
	}
	// d.buf goes back to its pool on return: the parse copies it.
	fams, release, err := decodeBytes(d.buf.Bytes(), contentType, utf8Names, pool, false)
	return fams, release, n, err
}

// noRelease is the release of families that are not pooled.
func noRelease() {}

// decodeBytes parses a whole decompressed body; with pool, into memory
// from a pool that release hands back (stable as for scanTextPooled).
func decodeBytes(b []byte, contentType string, utf8Names, pool, stable bool) (map[string]*dto.MetricFamily, func(), error) {
	var fams map[string]*dto.MetricFamily
	release := noRelease
	var err error
	switch isProto := isDelimitedProto(contentType); {
	case isProto && pool:
		fams, release, err = decodeProtoPooled(b, stable)
	case isProto:
		fams, err = decodeProto(b)
	default:
		var ok bool
		if pool {
			fams, release, ok = scanTextPooled(b, stable)
		} else {
			fams, ok = scanText(b)
		}
		if !ok {
			// Not in scanText's grammar: expfmt decides, and its error
			// is the Pushgateway's.
			release = noRelease
			fams, err = decodeText(bytes.NewReader(b), utf8Names)
		}
	}
	if err != nil {
		return nil, noRelease, asBadRequest(err)
	}
	return fams, release, nil
}

// emptyBody stands in for a nil body.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }

// isDelimitedProto reports whether a Content-Type selects delimited
// protobuf. Like the Pushgateway it needs both parameters with exactly these
// values; the media type and parameter names are case-insensitive.
func isDelimitedProto(contentType string) bool {
	switch contentType {
	case "":
		return false
	case protoContentType: // what client_golang sends, without parsing it
		return true
	}
	// Neither is a text type, whose parameters need no parsing to tell.
	// (No other character folds to an ASCII letter of "text/".)
	if len(contentType) >= 5 && strings.EqualFold(contentType[:5], "text/") {
		return false
	}
	mt, params, err := mime.ParseMediaType(contentType)
	return err == nil && mt == protoMediaType &&
		params["proto"] == protoMessage && params["encoding"] == protoEncoding
}

// decodeText parses text 0.0.4 with a fresh parser. Without utf8Names it
// validates names the legacy way, which rejects quoted UTF-8 names as the
// Pushgateway does without --push.enable-utf8-names. Families without
// samples are dropped.
//
// The parser is not pooled and its panics are recovered: in
// prometheus/common v0.70.1 a label set with no metric name after a TYPE
// line ("# TYPE s counter\n{a=\"b\"} 1\n") dereferences the metric of the
// previous line, which is nil in a fresh parser but in a reused one is a
// metric of an earlier push, now owned by the store. v0.73.1 fixes it.
func decodeText(r io.Reader, utf8Names bool) (fams map[string]*dto.MetricFamily, err error) {
	defer func() {
		if v := recover(); v != nil {
			fams, err = nil, fmt.Errorf("text format parsing error: parser failed on malformed input: %v", v)
		}
	}()
	scheme := model.LegacyValidation
	if utf8Names {
		scheme = model.UTF8Validation
	}
	p := expfmt.NewTextParser(scheme)
	return p.TextToMetricFamilies(r)
}

// decodeProto unmarshals varint-delimited MetricFamily messages, the format
// protodelim writes, straight from b: every declared size is checked against
// the bytes actually present, so a forged size cannot make it allocate. A
// repeated family name replaces the earlier family, as in the Pushgateway;
// families without metrics are kept (the store prunes them on exposition).
func decodeProto(b []byte) (map[string]*dto.MetricFamily, error) {
	return (&protoSlabs{}).decode(b, false)
}

// protoDecoders keeps protoSlabs between pushes, as textParsers keeps
// text parsers.
var protoDecoders = sync.Pool{New: func() any { return &protoSlabs{clientSlabs: clientSlabs{names: newInterned()}} }}

// decodeProtoPooled is decodeProto with slabs from protoDecoders; release
// and stable are as for scanTextPooled.
func decodeProtoPooled(b []byte, stable bool) (map[string]*dto.MetricFamily, func(), error) {
	d := protoDecoders.Get().(*protoSlabs)
	if d.releaser == nil {
		d.releaser = d.release
	}
	fams, err := d.decode(b, stable)
	if err != nil {
		d.release()
		return nil, noRelease, err
	}
	return fams, d.releaser, nil
}

// decode is decodeProto into d. With stable, label strings are cut from b
// itself, which must then not change while the families live.
func (d *protoSlabs) decode(b []byte, stable bool) (map[string]*dto.MetricFamily, error) {
	if d.fams == nil {
		d.fams = map[string]*dto.MetricFamily{}
	}
	fams := d.fams
	// One set of slabs, and one copy of the body for the label strings,
	// serve every family of the push.
	var all protoCounts
	for rest := b; len(rest) > 0; {
		size, w := protowire.ConsumeVarint(rest)
		if w < 0 || size > uint64(len(rest)-w) {
			break // the loop below reports it
		}
		if c, ok := countFamily(rest[w : w+int(size)]); ok {
			all.add(c)
		}
		rest = rest[w+int(size):]
	}
	d.reserve(all)
	body, off := b, 0
	text := func() string {
		if stable {
			return unsafe.String(unsafe.SliceData(body), len(body))
		}
		return string(body)
	}
	for len(b) > 0 {
		size, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b, off = b[n:], off+n
		if size > uint64(len(b)) {
			return nil, io.ErrUnexpectedEOF
		}
		msg := b[:size]
		// Every string is copied out of the pooled buffer, so it may be
		// reused afterwards.
		mf, ok := d.family(msg, text, off)
		if !ok {
			mf = &dto.MetricFamily{}
			if err := proto.Unmarshal(msg, mf); err != nil {
				return nil, err
			}
		}
		b, off = b[size:], off+int(size)
		fams[mf.GetName()] = mf
	}
	return fams, nil
}

// decoder holds the reusable state of one body decode. Pooling it saves
// the body buffer and the gzip and snappy windows on every push.
type decoder struct {
	buf  bytes.Buffer    // the decompressed body
	raw  limitedReader   // the body as received
	src  transportReader // under raw, for a Body (ReadBody)
	lim  limitedReader   // the decompressed body, for a Body
	zbuf *bufio.Reader   // byte reader under gzip, which would allocate its own
	gz   *gzip.Reader
	sz   *snappy.Reader
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

func getDecoder() *decoder { return decoderPool.Get().(*decoder) }

// putDecoder drops every reference to the request before pooling d.
func putDecoder(d *decoder) {
	if d.buf.Cap() > maxPooledBuffer {
		d.buf = bytes.Buffer{}
	}
	d.buf.Reset()
	d.raw.reset(nil, 0, "")
	d.src = transportReader{}
	d.lim.reset(nil, 0, "")
	if d.zbuf != nil {
		d.zbuf.Reset(nil)
	}
	decoderPool.Put(d)
}

// read decompresses body into d.buf, failing once it passes maxBytes
// (if positive).
func (d *decoder) read(body io.Reader, encoding string, maxBytes int64) error {
	r, over, err := d.open(body, encoding, maxBytes)
	if err != nil {
		return err
	}
	limited := limitedReader{r: r, max: maxBytes, over: over}
	_, err = d.buf.ReadFrom(&limited)
	return err
}

// open returns the decompressed body and the text of its overrun. The
// compressed body is held to the same limit: deflate and snappy framing add
// well under 0.1 %, so only a body that would fail anyway, or a stream of
// empty gzip members that decompresses to nothing, can trip it.
func (d *decoder) open(body io.Reader, encoding string, maxBytes int64) (io.Reader, string, error) {
	switch {
	case strings.EqualFold(encoding, "gzip"):
		d.raw.reset(body, maxBytes, overCompressed)
		zr, err := d.gzipReader(&d.raw)
		return zr, overDecompressed, err
	case strings.EqualFold(encoding, "snappy"):
		d.raw.reset(body, maxBytes, overCompressed)
		return d.snappyReader(&d.raw), overDecompressed, nil
	default: // identity (supportedEncoding refused the others)
		return body, overIdentity, nil
	}
}

func (d *decoder) gzipReader(r io.Reader) (io.Reader, error) {
	if d.zbuf == nil {
		d.zbuf = bufio.NewReader(r)
	} else {
		d.zbuf.Reset(r)
	}
	if d.gz == nil {
		zr, err := gzip.NewReader(d.zbuf)
		if err != nil {
			return nil, err
		}
		d.gz = zr
		return zr, nil
	}
	return d.gz, d.gz.Reset(d.zbuf)
}

func (d *decoder) snappyReader(r io.Reader) io.Reader {
	if d.sz == nil {
		d.sz = snappy.NewReader(r)
	} else {
		d.sz.Reset(r)
	}
	return d.sz
}

// limitedReader counts the bytes it passes on and fails once more than max
// (if positive) have been read. Unlike io.LimitReader it reports the overrun
// as an error instead of a silent EOF, so no caller can mistake a truncated
// body for a whole one.
type limitedReader struct {
	r    io.Reader
	n    int64  // bytes read so far
	max  int64  // 0 = no limit
	over string // one of the over* texts
}

func (l *limitedReader) reset(r io.Reader, max int64, over string) {
	*l = limitedReader{r: r, max: max, over: over}
}

// Read reads at most one byte past the limit: enough to tell an overrun
// from a body of exactly max bytes.
func (l *limitedReader) Read(p []byte) (int, error) {
	if l.max <= 0 {
		n, err := l.r.Read(p)
		l.n += int64(n)
		return n, err
	}
	if l.n > l.max {
		return 0, l.tooLarge()
	}
	if room := l.max + 1 - l.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		return n - int(l.n-l.max), l.tooLarge()
	}
	return n, err
}

func (l *limitedReader) tooLarge() error {
	return &requestError{kind: ErrTooLarge, cause: fmt.Errorf(l.over, l.max, flagMaxBodyBytes)}
}
