package textfloat

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireLikeStrconv checks that whatever Scan reads of s is what strconv
// reads of the same bytes, bit for bit, and returns whether Scan read it.
func requireLikeStrconv(t testing.TB, s string) bool {
	got, n, ok := Scan(s)
	if !ok {
		return false
	}
	require.Positive(t, n, "%q", s)
	want, err := strconv.ParseFloat(s[:n], 64)
	require.NoError(t, err, "Scan read %q of %q, which strconv refuses", s[:n], s)
	require.Equal(t, math.Float64bits(want), math.Float64bits(got), "%q: strconv %v, Scan %v", s[:n], want, got)
	gotBytes, nBytes, okBytes := Scan([]byte(s))
	require.Equal(t, []any{got, n, ok}, []any{gotBytes, nBytes, okBytes}, "%q as bytes", s)
	return true
}

func TestScan(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int // 0: Scan leaves it to strconv
		want float64
	}{
		{"0", 1, 0}, {"-0", 2, math.Copysign(0, -1)}, {"1", 1, 1}, {"007", 3, 7}, {"0.5", 3, 0.5},
		{".5", 2, 0.5}, {"5.", 2, 5}, {"-21.5", 5, -21.5}, {"1e+06", 5, 1e6}, {"1.7e+09", 7, 1.7e9},
		{"1.700000000e+09", 15, 1.7e9}, {"1E5", 3, 1e5}, {"1e-5", 4, 1e-5}, {"0.000123", 8, 0.000123},
		{"2.2647772601e+11", 16, 2.2647772601e+11}, {"1e22", 4, 1e22}, {"1e-22", 5, 1e-22},
		{"9007199254740992", 16, 9007199254740992},
		{"42 1700000000000", 2, 42}, {"3.5\n", 3, 3.5}, {"1.2.3", 3, 1.2},
		// Left to strconv: too many digits, exponents past ±22, and
		// everything that is not a plain decimal.
		{"9007199254740993", 0, 0}, {"12345678901234567890", 0, 0}, {"1e23", 0, 0}, {"1e-23", 0, 0},
		{"4.9e-324", 0, 0}, {"1e99999999999", 0, 0}, {"+5", 0, 0}, {"+Inf", 0, 0}, {"NaN", 0, 0},
		{"Inf", 0, 0}, {"-", 0, 0}, {".", 0, 0}, {"", 0, 0}, {"e5", 0, 0}, {"1e", 0, 0}, {"1e+", 0, 0},
	} {
		got, n, ok := Scan(tt.s)
		require.Equal(t, tt.n > 0, ok, "%q", tt.s)
		if ok {
			require.Equal(t, tt.n, n, "%q", tt.s)
			require.Equal(t, math.Float64bits(tt.want), math.Float64bits(got), "%q: %v", tt.s, got)
		}
		requireLikeStrconv(t, tt.s)
	}
}

// TestScanReadsShortestDecimals: the shortest formatting of whole numbers
// and short decimals, as clients and the store write them, is read here,
// never left to strconv, and read exactly.
func TestScanReadsShortestDecimals(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		var f float64
		switch rnd.IntN(3) {
		case 0:
			f = float64(rnd.IntN(1_000_000_000)) / math.Pow10(rnd.IntN(12))
		case 1:
			f = float64(rnd.Int64N(1 << 53))
		default:
			f = float64(rnd.IntN(100_000)) * math.Pow10(rnd.IntN(15))
		}
		if rnd.IntN(2) == 0 {
			f = -f
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		require.True(t, requireLikeStrconv(t, s), "%q left to strconv", s)
		requireLikeStrconv(t, strconv.FormatFloat(math.Float64frombits(rnd.Uint64()), 'e', rnd.IntN(20), 64))
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{"0", "-21.5", "1.7e+09", "+Inf", "NaN", "1e23", "9007199254740993", "0.000123", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { requireLikeStrconv(t, s) })
}
