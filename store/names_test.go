package store

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// TestLegacyNamesAreModels checks the byte loops of legacyName and
// legacyLabelName against model's legacy validation, on every string of
// up to three bytes from an alphabet of the boundary bytes and on random
// strings with multi-byte runes.
func TestLegacyNamesAreModels(t *testing.T) {
	alphabet := []byte{'a', 'z', 'A', 'Z', '0', '9', '_', ':', '/', '`', '@', '[', '{', '-', '.', ' ', 0, 0x7f, 0x80, 0xc3, 0xbc, 0xff}
	check := func(s string) {
		t.Helper()
		require.Equal(t, model.LegacyValidation.IsValidMetricName(s), legacyName(s), "%q", s)
		require.Equal(t, model.LegacyValidation.IsValidLabelName(s), legacyLabelName(s), "%q", s)
	}
	check("")
	for _, a := range alphabet {
		check(string([]byte{a}))
		for _, b := range alphabet {
			check(string([]byte{a, b}))
			for _, c := range alphabet {
				check(string([]byte{a, b, c}))
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 9))
	runes := []rune("aZ_:09ü€.-\u00a0")
	for range 20000 {
		r := make([]rune, rng.IntN(12))
		for i := range r {
			r[i] = runes[rng.IntN(len(runes))]
		}
		check(string(r))
	}
}

// TestAppendEscaped checks the help and label value escaping against a
// byte-by-byte reference, with and without quotes escaped.
func TestAppendEscaped(t *testing.T) {
	ref := func(s string, quote bool) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\':
				b.WriteString(`\\`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '"' && quote:
				b.WriteString(`\"`)
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	rng := rand.New(rand.NewPCG(5, 11))
	pieces := []string{"", "a", "plain text ", "\\", "\n", "\"", "ü", "\\n", "\"\"", "\r\t"}
	for range 20000 {
		var s strings.Builder
		for range rng.IntN(8) {
			s.WriteString(pieces[rng.IntN(len(pieces))])
		}
		for _, quote := range []bool{false, true} {
			got := appendEscaped([]byte("x"), s.String(), quote)
			require.Equal(t, "x"+ref(s.String(), quote), string(got), "%q quote=%v", s.String(), quote)
		}
	}
}
