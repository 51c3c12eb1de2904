package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A body's series and a stored line's have one key exactly when they are
// the same series: labels in any order, the grouping pairs of the stored
// line aside, a histogram's le as a float; values with commas, quotes and
// braces kept apart.
func TestLabelKeys(t *testing.T) {
	grouping := [][]byte{[]byte(`instance=""`), []byte(`job="web"`)}
	stored := func(s string) string {
		t.Helper()
		k, ok := storedPairs([]byte(s), grouping)
		require.True(t, ok, s)
		return k
	}
	pushed := []string{
		`a{y="2",x="1"}`,
		`a{x="1,y=\"2\""}`,
		`a{x="2",y="1"}`,
		`a{x="1",y="2",z=""}`,
		`a`,
		`a_total{x="1",y="2"}`,
	}
	keys := pushedPairs(toBytes(pushed), "")
	require.Len(t, keys, len(pushed), "every series its own key")
	for s, want := range map[string]int{
		`a{instance="",job="web",x="1",y="2"}`:       0,
		`a{instance="",job="web",x="1,y=\"2\""}`:     1,
		`a{instance="",job="web",x="2",y="1"}`:       2,
		`a{instance="",job="web",x="1",y="2",z=""}`:  3,
		`a{instance="",job="web"}`:                   4,
		`a_total{instance="",job="web",x="1",y="2"}`: 5,
	} {
		got, ok := keys[stored(s)]
		require.True(t, ok, "%s has no pushed series", s)
		require.Equal(t, want, got, s)
	}
	_, ok := keys[stored(`a{instance="",job="other",x="1",y="2"}`)]
	require.False(t, ok, "another job's pair is a label of the series")

	// le read as a float where the store writes it so: the Python
	// client's le="1.0" is the store's le="1"; not in other families.
	buckets := pushedPairs(toBytes([]string{`h_bucket{le="1.0",code="200"}`, `h_bucket{le="+Inf",code="200"}`}), "le")
	require.Contains(t, buckets, stored(`h_bucket{code="200",instance="",job="web",le="1"}`))
	require.Contains(t, buckets, stored(`h_bucket{code="200",instance="",job="web",le="+Inf"}`))
	require.NotContains(t, pushedPairs(toBytes([]string{`g{le="1.0"}`}), ""), stored(`g{instance="",job="web",le="1"}`))
	require.Nil(t, pushedPairs(toBytes([]string{`h_bucket{le="1.0"}`, `h_bucket{le="1"}`}), "le"), "one series twice")
	require.Nil(t, pushedPairs(toBytes([]string{`h_bucket{le="x"}`}), "le"), "a bound that is no float")
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
