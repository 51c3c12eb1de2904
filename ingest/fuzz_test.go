package ingest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// canonicalPath writes a key as the push path a careful client would send:
// everything base64-encoded, so any value survives the trip.
func canonicalPath(labels map[string]string) string {
	var b strings.Builder
	b.WriteString("/job@base64/")
	b.WriteString(base64.RawURLEncoding.EncodeToString([]byte(labels[jobLabel])))
	for n, v := range labels {
		if n == jobLabel {
			continue
		}
		b.WriteString("/" + n + base64Suffix + "/")
		b.WriteString(base64.RawURLEncoding.EncodeToString([]byte(v)))
	}
	return b.String()
}

func FuzzParseGroupingPath(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzParseGroupingPath.
	for _, p := range []string{
		"/job/j", "/job/j/a/1/b/2", "/job@base64/L3Zhci90bXA/x@base64/=", "/job/j/a/",
		"/job/j/a", "/job/j/sp/a+b%2Bc", "/job/titan/name/%CE%A0%CF%81", "/job/j/x/%FF",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		key, err := ParseGroupingPath(path)
		if err != nil {
			require.Contains(t, []int{400, 404}, statusOf(err), "%v", err)
			require.NotEmpty(t, err.Error())
			require.True(t, key.IsZero())
			return
		}
		labels := key.Map()
		require.NotEmpty(t, labels[jobLabel])
		for n, v := range labels {
			require.True(t, n == jobLabel || validLabelName(n), "name %q", n)
			require.True(t, utf8.ValidString(v), "value %q", v)
		}
		again, err := ParseGroupingPath(canonicalPath(labels))
		require.NoError(t, err)
		require.Equal(t, key, again)
		parsed, err := store.ParseGroupKey(key.String())
		require.NoError(t, err)
		require.Equal(t, key, parsed)
	})
}

// FuzzDecodeBody checks that decoding never panics, fails only with 400 or
// 413, and that gzip and snappy bodies decode exactly as their plain form.
func FuzzDecodeBody(f *testing.F) {
	node := readTestdata(f, "node.prom")
	f.Add(node, false)
	f.Add(encodeDelimited(f, sortedFamilies(parseText(f, string(node)))...), true)
	f.Add([]byte("m{a=\"1\"} 1\n"), false)
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"), false)
	f.Add([]byte{0x02, 0xff, 0xff}, true)
	f.Fuzz(fuzzDecodeBodyOnce)
}

func fuzzDecodeBodyOnce(t *testing.T, body []byte, asProto bool) {
	const limit = 1 << 20
	ct := "text/plain; version=0.0.4"
	if asProto {
		ct = string(fmtProtoDelim)
	}
	fams, err := DecodeBody(bytes.NewReader(body), ct, "", limit)
	if err != nil {
		require.Contains(t, []int{400, 413}, statusOf(err), "%v", err)
	} else {
		require.NotNil(t, fams)
		for name, mf := range fams {
			require.Equal(t, name, mf.GetName())
			require.True(t, asProto || len(mf.GetMetric()) > 0)
		}
	}
	if len(body) > limit/2 {
		return // compression overhead could trip the compressed limit
	}
	for _, enc := range []struct {
		name   string
		encode func(testing.TB, []byte) []byte
	}{{"gzip", gzipBytes}, {"snappy", snappyBytes}} {
		got, gotErr := DecodeBody(bytes.NewReader(enc.encode(t, body)), ct, enc.name, limit)
		if err != nil {
			require.EqualError(t, gotErr, err.Error(), enc.name)
			continue
		}
		require.NoError(t, gotErr, enc.name)
		requireFamiliesEqual(t, fams, got)
	}
	if len(body) > 1 {
		_, err := DecodeBody(bytes.NewReader(body), ct, "", int64(len(body)-1))
		require.True(t, errors.Is(err, ErrTooLarge), "%v", err)
	}
}

// FuzzGroupKey checks that a key built from any valid grouping labels
// survives store.ParseGroupKey and a push path.
func FuzzGroupKey(f *testing.F) {
	f.Add("batch", "instance", "host-1", "path", "/var/tmp")
	f.Add("j", "a", "", "b", "Πρ")
	f.Add("j", "job", "x", "a", "a\x00b")
	f.Add("j", "a", "1", "a", "2")
	f.Fuzz(func(t *testing.T, job, n1, v1, n2, v2 string) {
		ls := []store.Label{{Name: n1, Value: v1}, {Name: n2, Value: v2}, {Name: jobLabel, Value: job}}
		want := map[string]string{}
		for _, l := range ls {
			if !validLabelName(l.Name) || !utf8.ValidString(l.Value) {
				return // not a grouping label a push can carry
			}
			want[l.Name] = l.Value
		}
		if job == "" {
			return
		}
		key := store.KeyFromLabels(ls)
		require.Equal(t, want, key.Map())
		parsed, err := store.ParseGroupKey(key.String())
		require.NoError(t, err)
		require.Equal(t, key, parsed)
		fromPath, err := ParseGroupingPath(canonicalPath(want))
		require.NoError(t, err)
		require.Equal(t, key, fromPath)
	})
}
