package store

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// requireParsesLikeStrconv checks parseTextFloat against strconv on s.
func requireParsesLikeStrconv(t testing.TB, s string) {
	want, err := strconv.ParseFloat(s, 64)
	got, ok := parseTextFloat([]byte(s))
	require.Equal(t, err == nil, ok, "%q: strconv says %v", s, err)
	if ok {
		require.Equal(t, math.Float64bits(want), math.Float64bits(got), "%q: strconv %v, got %v", s, want, got)
	}
}

func TestParseTextFloat(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "1", "-1", "42", "007", "0.5", ".5", "5.", "-21.5", "2500.5", "1e+06", "1.7e+09", "1.700000000e+09",
		"1E5", "1e-5", "0.000123", "123456789012345678", "1234567890123456789", "12345678901234567890",
		"9007199254740992", "9007199254740993", "1e22", "1e23", "1e-22", "1e-23", "4.9e-324", "1.7976931348623157e+308",
		"1e309", "1e-400", "1e99999999999", "+Inf", "-Inf", "NaN", "Inf", "inf", "+5", "--5", "-", ".", "", "e5",
		"1e", "1e+", "1.2.3", "0x10", "0x1p-2", "1_000", "1 2", "1\n", " 1", "0.1", "0.3", "3.14159", "-0.0",
	} {
		requireParsesLikeStrconv(t, s)
	}
	// The shortest formatting of random values, as the store writes them.
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		var f float64
		switch rnd.IntN(4) {
		case 0:
			f = math.Float64frombits(rnd.Uint64())
		case 1:
			f = float64(rnd.IntN(1_000_000_000)) / math.Pow10(rnd.IntN(12))
		case 2:
			f = float64(rnd.Int64N(1 << 60))
		default:
			f = rnd.NormFloat64() * math.Pow10(rnd.IntN(40)-20)
		}
		requireParsesLikeStrconv(t, string(appendTextFloat(nil, f)))
		requireParsesLikeStrconv(t, strconv.FormatFloat(f, 'e', rnd.IntN(20), 64))
	}
}

func FuzzParseTextFloat(f *testing.F) {
	for _, s := range []string{"0", "-21.5", "1.7e+09", "+Inf", "NaN", "1e23", "9007199254740993", "0.000123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { requireParsesLikeStrconv(t, s) })
}

// renderBoth renders text as family name of type typ with the renderer and
// with the reference one it replaced (protobuf_ref_test.go) and checks
// that both accept or refuse it and write the same bytes.
func renderBoth(t testing.TB, name string, typ dto.MetricType, text []byte, infAdded bool) {
	var got, want []byte
	var gotErr, wantErr error
	if hasSimpleText(typ) {
		got, gotErr = new(textScratch).appendSimpleProtobuf([]byte{}, name, typ, text, nil)
		want, wantErr = new(refTextScratch).appendSimpleProtobuf([]byte{}, name, typ, text)
	} else {
		var gn, wn int
		got, gn, gotErr = new(complexText).appendProtobuf([]byte{}, name, typ, text, infAdded, nil)
		want, wn, wantErr = new(refComplexText).appendProtobuf([]byte{}, name, typ, text, infAdded)
		require.Equal(t, wn, gn, "metrics of %q", text)
	}
	require.Equal(t, wantErr == nil, gotErr == nil, "text %q: reference error %v, error %v", text, wantErr, gotErr)
	require.Equal(t, want, got, "text %q", text)
}

// TestRenderMatchesReference renders the text of the families the
// persistence and scrape tests store, built as pushes build them, and
// text the store never writes, with both renderers.
func TestRenderMatchesReference(t *testing.T) {
	b := newBuilder()
	n := 0
	for _, g := range append(testGroups(), benchGroups(20)...) {
		for _, fs := range g.Families {
			out := b.build(fs.Family, fs.Time)
			require.Empty(t, out.errs)
			renderBoth(t, out.fam.name, out.fam.typ(), textOf(out.fam), out.fam.infAdded())
			n++
		}
	}
	require.Greater(t, n, 100)
	for _, tc := range []struct {
		typ  dto.MetricType
		text string
	}{
		{dto.MetricType_GAUGE, "m 1\nm{a=\"x\\\\y\\\"z\\n\"} -Inf\nm{a=\"\",b=\"Πρ\"} NaN\n"},
		{dto.MetricType_COUNTER, "m{a=\"1\"} 1e+400\n"},
		{dto.MetricType_COUNTER, "m{a=\"1\"} 1"},
		{dto.MetricType_COUNTER, "m{a=\"1\n\"} 1\n"},
		{dto.MetricType_COUNTER, "m{a=\"x\\\n\"} 1\n"}, // an escaped line end
		{dto.MetricType_UNTYPED, "m{a=1} 1\n"},
		{dto.MetricType_UNTYPED, "n 1\n"},
		{dto.MetricType_UNTYPED, "m  1\n"},
		{dto.MetricType_SUMMARY, "m{quantile=\"0.5\"} 1\nm_sum 2\nm_count 3\n"},
		{dto.MetricType_SUMMARY, "m{a=\"b\",quantile=\"0.5\"} 1\nm_sum{a=\"b\"} 2\nm_count{a=\"b\"} 3\n"},
		{dto.MetricType_SUMMARY, "m{quantile=\"x\"} 1\nm_sum 2\nm_count 3\n"},
		{dto.MetricType_SUMMARY, "m{quantile=\"0.5\"} 1 2\nm_sum 2\nm_count 3\n"},
		{dto.MetricType_HISTOGRAM, "m_bucket{le=\"1\"} 1\nm_bucket{le=\"+Inf\"} 2\nm_sum 2\nm_count 2\n"},
		{dto.MetricType_HISTOGRAM, "m_bucket{le=\"1\"} 1\nm_sum 2\n"},
		{dto.MetricType_HISTOGRAM, "m_bucket{a=\"} \",le=\"1\"} 1\nm_sum{a=\"} \"} 2\nm_count{a=\"} \"} 1\n"},
	} {
		renderBoth(t, "m", tc.typ, []byte(tc.text), false)
		renderBoth(t, "m", tc.typ, []byte(tc.text), true)
	}
	// Metrics whose length takes one, two and three bytes, around each
	// boundary: the simple renderer writes them in place and moves them
	// up when the length needs more than one byte.
	for _, n := range []int{100, 110, 112, 113, 114, 115, 116, 120, 127, 128, 200, 16_360, 16_370, 16_371, 16_372, 16_373, 16_380, 16_400, 70_000} {
		v := strings.Repeat("x", n)
		renderBoth(t, "m", dto.MetricType_GAUGE, []byte("m{a=\""+v+"\"} 1.5\nm{a=\"y\",b=\""+v+"\"} -2\n"), false)
		renderBoth(t, "m", dto.MetricType_SUMMARY, []byte("m{a=\""+v+"\",quantile=\"0.5\"} 1\nm_sum{a=\""+v+"\"} 2\nm_count{a=\""+v+"\"} 3\n"), false)
	}
}

// FuzzRenderMatchesReference renders arbitrary text as each type with
// both renderers. A family name is a legacy name: families with UTF-8
// names keep their protobuf from the start (builder.render).
func FuzzRenderMatchesReference(f *testing.F) {
	b := newBuilder()
	for _, fs := range testGroups()[1].Families {
		out := b.build(fs.Family, fs.Time)
		f.Add(out.fam.name, byte(out.fam.typ()), out.fam.infAdded(), bytes.Clone(textOf(out.fam)))
	}
	f.Fuzz(func(t *testing.T, name string, typ byte, infAdded bool, text []byte) {
		if !legacyName(name) {
			t.Skip("the renderers read families with legacy names only (the others keep their protobuf)")
		}
		renderBoth(t, name, dto.MetricType(typ%5), text, infAdded)
	})
}

// TestIndexEnds checks the eight-bytes-at-a-time scans against a plain
// loop, for every position of every byte they look for, among other bytes
// and after an earlier match.
func TestIndexEnds(t *testing.T) {
	plain := func(s []byte, set string) int {
		for i, c := range s {
			if strings.IndexByte(set, c) >= 0 {
				return i
			}
		}
		return len(s)
	}
	for n := range 20 {
		for at := range n + 1 {
			for _, c := range []byte{'=', '"', '\\', '\n', 'a', 0x80, 0xff, 0x01, '<', '>'} {
				s := bytes.Repeat([]byte{'x'}, n)
				if at < n {
					s[at] = c
				}
				require.Equal(t, plain(s, "=\n"), indexNameEnd(s), "%q", s)
				require.Equal(t, plain(s, "\"\\\n"), indexValueEnd(s), "%q", s)
				for _, first := range []byte{'=', '"', 0} { // a match (or a zero byte) below another
					s2 := append([]byte{first}, s...)
					require.Equal(t, plain(s2, "=\n"), indexNameEnd(s2), "%q", s2)
					require.Equal(t, plain(s2, "\"\\\n"), indexValueEnd(s2), "%q", s2)
				}
			}
		}
	}
}
