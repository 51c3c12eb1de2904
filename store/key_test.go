package store_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// keyCases are grouping keys whose encoding and hash are pinned.
var keyCases = []map[string]string{
	{"job": "batch"},
	{"job": "batch", "instance": "host:9100"},
	{"job": "b64", "x": "/var/tmp", "e": ""},
	{"job": "Πρ", "zone": "eu-west-1", "instance": ""},
	{"job": "kubeedge", "instance": "edge-node-00042", "node": "edge-node-00042"},
}

// TestGroupKeyGolden pins the encoding and the hash of grouping keys: they
// decide the owner peer of every group and the key of the persistence file,
// so a change moves every group. Never regenerate this file to make a
// change pass.
func TestGroupKeyGolden(t *testing.T) {
	var b strings.Builder
	for _, ls := range keyCases {
		k := store.NewGroupKey(ls)
		require.Equal(t, xxhash.Sum64String(k.String()), k.Hash())
		fmt.Fprintf(&b, "%q %016x\n", k.String(), k.Hash())
	}
	requireGolden(t, "key/keys.golden", []byte(b.String()))
}

func TestGroupKeyRoundTrip(t *testing.T) {
	for _, ls := range keyCases {
		k := store.NewGroupKey(ls)
		parsed, err := store.ParseGroupKey(k.String())
		require.NoError(t, err)
		require.Equal(t, k, parsed)
		require.Equal(t, ls, k.Map())
		job, ok := k.Get("job")
		require.True(t, ok)
		require.Equal(t, ls["job"], job)
		require.Len(t, k.Labels(), len(ls))
	}
}

func TestKeyFromLabelsLaterDuplicateWins(t *testing.T) {
	k := store.KeyFromLabels([]store.Label{{Name: "job", Value: "a"}, {Name: "x", Value: "1"}, {Name: "job", Value: "b"}})
	require.Equal(t, store.NewGroupKey(map[string]string{"job": "b", "x": "1"}), k)

	// More labels than KeyFromLabels keeps on its stack, a name three
	// times over and one twice: each keeps its last value, in any order of
	// names, and the argument is left as it was.
	var ls []store.Label
	want := map[string]string{}
	for i := range 12 {
		n, v := fmt.Sprintf("l%02d", (i*7)%12), fmt.Sprint(i)
		ls = append(ls, store.Label{Name: n, Value: v})
		want[n] = v
	}
	ls = append(ls, store.Label{Name: "job", Value: "1"}, store.Label{Name: "l03", Value: "a"},
		store.Label{Name: "job", Value: "2"}, store.Label{Name: "job", Value: "3"}, store.Label{Name: "l03", Value: "b"})
	want["job"], want["l03"] = "3", "b"
	orig := slices.Clone(ls)
	require.Equal(t, store.NewGroupKey(want), store.KeyFromLabels(ls))
	require.Equal(t, orig, ls)
}

func TestParseGroupKeyRejects(t *testing.T) {
	for _, enc := range []string{"", "job", "job\xffa\xffx", "x\xff1\xffjob\xffa", "job\xffa\xffjob\xffb"} {
		_, err := store.ParseGroupKey(enc)
		require.ErrorIs(t, err, store.ErrInvalidKey, "%q", enc)
	}
}
