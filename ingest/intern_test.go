package ingest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// TestInterned interns more than fits: the set hands out equal strings of
// their own, the same one for a string it holds, and forgets everything
// rather than pass its bound.
func TestInterned(t *testing.T) {
	c := newInterned()
	for i := range 5000 {
		s := fmt.Sprintf("family_%d_%s", i, strings.Repeat("x", i%300))
		got := c.get(s)
		require.Equal(t, s, got)
		require.NotSame(t, unsafe.StringData(s), unsafe.StringData(got), "an interned string shares the bytes it was made from")
		require.Same(t, unsafe.StringData(got), unsafe.StringData(c.get(string([]byte(s)))), "a string held is not handed out again")
		require.LessOrEqual(t, c.bytes, maxInternedBytes)
		if i%500 == 0 {
			n := 0
			for k, v := range c.m {
				require.Equal(t, k, v)
				n += internEntryBytes + len(k)
			}
			require.Equal(t, n, c.bytes, "the bytes counted are the bytes held")
		}
	}
	long := strings.Repeat("h", maxInternedLen+1)
	require.Equal(t, long, c.get(long))
	require.NotContains(t, c.m, long, "a long string is copied, not kept")

	// A parser out of the pools copies; the pools' parsers intern.
	var off interned
	require.Equal(t, "m", off.get("m"))
	require.Nil(t, off.m)
	require.NotNil(t, textParsers.New().(*textParser).names.m)
	require.NotNil(t, protoDecoders.New().(*protoSlabs).names.m)
}

// TestInternedStringsOwnTheirBytes parses bodies in place (stable) with
// pooled parsers, then overwrites them, as if their buffers served another
// request: the family names and HELP texts handed out, which the store
// keeps, and those later pushes of the same families take, are unchanged.
func TestInternedStringsOwnTheirBytes(t *testing.T) {
	text := readTestdata(t, "node.prom")
	want := parseText(t, string(text))
	pb := encodeDelimited(t, sortedFamilies(want)...)
	decode := map[string]func(b []byte) (map[string]*dto.MetricFamily, func()){
		"text": func(b []byte) (map[string]*dto.MetricFamily, func()) {
			fams, release, ok := scanTextPooled(b, true)
			require.True(t, ok)
			return fams, release
		},
		"protobuf": func(b []byte) (map[string]*dto.MetricFamily, func()) {
			fams, release, err := decodeProtoPooled(b, true)
			require.NoError(t, err)
			return fams, release
		},
	}
	for name, body := range map[string][]byte{"text": text, "protobuf": pb} {
		t.Run(name, func(t *testing.T) {
			for range 3 {
				b := bytes.Clone(body)
				fams, release := decode[name](b)
				requireSameFamilies(t, want, fams)
				var kept []string // what a store would keep
				for _, mf := range fams {
					kept = append(kept, mf.GetName(), mf.GetHelp())
				}
				release()
				for i := range b {
					b[i] = 'X'
				}
				for i, s := range kept {
					require.NotContains(t, s, "X", "string %d", i)
				}
			}
		})
	}
}
