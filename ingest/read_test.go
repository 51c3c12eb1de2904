package ingest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// errReader fails after its data with err, as a connection past its read
// deadline does.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadBodyChargesWhatItBuffers(t *testing.T) {
	gz := gzipBytes(t, []byte(strings.Repeat("m 1\n", 100_000)))
	var charged int64
	b, err := ReadBody(bytes.NewReader(gz), "GZIP", 0, -1, func(n int64) error { charged += n; return nil })
	require.NoError(t, err)
	require.NoError(t, b.Err())
	require.Equal(t, 400_000, b.Len(), "decompressed")
	require.Equal(t, int64(cap(b.buf)), charged, "every byte of the buffer, none twice")
	fams, err := DecodeBody(b, "", "gzip", 0)
	require.NoError(t, err, "a Body is decoded as read, whatever encoding is named")
	require.Len(t, fams, 1)
}

func TestReadBodyStopsWhenTheBudgetRefuses(t *testing.T) {
	refused := errors.New("over budget")
	var charged int64
	_, err := ReadBody(strings.NewReader(strings.Repeat("m 1\n", 100_000)), "", 0, -1, func(n int64) error {
		if charged+n > 100_000 {
			return refused
		}
		charged += n
		return nil
	})
	require.ErrorIs(t, err, refused)
	require.LessOrEqual(t, charged, int64(100_000))
}

// A failing connection is returned as an error; a refusal of the content
// is kept in the Body for Handle to answer in its order of checks.
func TestReadBodyErrors(t *testing.T) {
	free := func(int64) error { return nil }
	_, err := ReadBody(&errReader{data: []byte("m 1\n"), err: io.ErrClosedPipe}, "", 0, -1, free)
	require.ErrorIs(t, err, io.ErrClosedPipe)
	_, err = ReadBody(&errReader{data: gzipBytes(t, []byte("m 1\n"))[:12], err: io.ErrClosedPipe}, "gzip", 0, -1, free)
	require.ErrorIs(t, err, io.ErrClosedPipe, "a connection failing under gzip is still the connection's")

	for _, tt := range []struct {
		name, encoding, body string
		status               int
	}{
		{"too large", "", strings.Repeat("m 1\n", 10), 413},
		{"corrupt gzip", "gzip", "not gzip at all", 400},
		{"unsupported encoding", "br", "m 1\n", 415},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ReadBody(strings.NewReader(tt.body), tt.encoding, 16, -1, free)
			require.NoError(t, err)
			require.Equal(t, tt.status, statusOf(b.Err()))
			_, err = DecodeBody(b, "", "", 16)
			require.Equal(t, tt.status, statusOf(err))
		})
	}
}

// A body of a known size is read into a buffer of that size, charged
// once; a size over the limit, a compressed body or a size that is wrong
// fall back to growing the buffer.
func TestReadBodyOfKnownSize(t *testing.T) {
	body := []byte(strings.Repeat("m 1\n", 1000))
	size := int64(len(body))
	for _, c := range []struct {
		name      string
		size, max int64
		exact     bool
	}{
		{"known size", size, 1 << 20, true},
		{"no limit", size, 0, true},
		{"unknown size", -1, 1 << 20, false},
		{"declared short", size / 2, 1 << 20, false},
		{"over the limit", size, size - 1, false},
	} {
		var charged int64
		b, err := ReadBody(bytes.NewReader(body), "", c.max, c.size, func(n int64) error { charged += n; return nil })
		require.NoError(t, err, c.name)
		if c.max > 0 && size > c.max {
			require.ErrorIs(t, b.Err(), ErrTooLarge, c.name)
			continue
		}
		require.NoError(t, b.Err(), c.name)
		require.Equal(t, body, b.buf, c.name)
		require.Equal(t, int64(cap(b.buf)), charged, "%s: every byte of the buffer, none twice", c.name)
		if c.exact {
			require.Equal(t, 4096, cap(b.buf), "%s: 4001 bytes in the pool's 4 KiB class", c.name)
			require.NotNil(t, b.pooled, c.name)
		} else {
			require.Nil(t, b.pooled, "%s: a pooled buffer outgrown is not handed back", c.name)
		}
	}
	_, err := ReadBody(bytes.NewReader(body), "", 0, size, func(int64) error { return errTestCharge })
	require.ErrorIs(t, err, errTestCharge)
}

var errTestCharge = errors.New("over budget")

func TestBodyClass(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want int
	}{
		{0, -1}, {1, -1}, {1024, -1}, // small: allocated as they are
		{1025, 0}, {2048, 0}, {2049, 1}, {4096, 1}, {4097, 2},
		{32 << 10, 4}, {32<<10 + 1, 5}, {64 << 10, 5},
		{64<<10 + 1, -1}, {1 << 30, -1}, // large: allocated as they are
	} {
		require.Equal(t, c.want, bodyClass(c.n), "%d bytes", c.n)
	}
}

// A body of a size the pools hold is read into a pooled buffer, charged
// for all of it; once released, the Body refuses every use, and its buffer
// serves a later body (sync.Pool may drop any one buffer, so a few rounds
// are tried).
func TestBodyRelease(t *testing.T) {
	text := strings.Repeat("m 1\n", 700) // 2800 bytes
	var reused bool
	for range 20 {
		var charged int64
		b, err := ReadBody(strings.NewReader(text), "", 0, int64(len(text)), func(n int64) error { charged += n; return nil })
		require.NoError(t, err)
		raw, err := b.Bytes()
		require.NoError(t, err)
		require.Equal(t, text, string(raw))
		require.Equal(t, int64(4096), charged)
		b.Release()
		_, err = b.Bytes()
		require.ErrorIs(t, err, errReleased)
		_, err = b.Read(make([]byte, 8))
		require.ErrorIs(t, err, errReleased)

		again, err := ReadBody(strings.NewReader(text), "", 0, int64(len(text)), func(int64) error { return nil })
		require.NoError(t, err)
		raw2, err := again.Bytes()
		require.NoError(t, err)
		require.Equal(t, text, string(raw2))
		reused = reused || unsafe.SliceData(raw2) == unsafe.SliceData(raw)
		again.Release()
	}
	require.True(t, reused, "no released buffer served a later body")

	// Poisoned (tests of retention): overwritten, not reused.
	poisonReleased.Store(true)
	t.Cleanup(func() { poisonReleased.Store(false) })
	b, err := ReadBody(strings.NewReader(text), "", 0, int64(len(text)), func(int64) error { return nil })
	require.NoError(t, err)
	raw, err := b.Bytes()
	require.NoError(t, err)
	b.Release()
	require.Equal(t, strings.Repeat("\xff", len(text)), string(raw))
}
