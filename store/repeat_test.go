package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// TestRepeatReleasesCachedRenderings checks that a repeated push hands back
// the renderings scrapes kept of the families it replaces, as a push the
// full way does: two stores get the same pushes and scrapes, one through
// repeats and one the full way, and their render caches must count the
// same bytes after every step.
func TestRepeatReleasesCachedRenderings(t *testing.T) {
	repeats, _ := newStore(t, nil)
	full, _ := newStore(t, nil)
	k := key("job", "r")
	series := [][]byte{[]byte(`r{i="1"}`), []byte(`r{i="2"}`)}
	push := func(i int) (repeated bool) {
		at := t1.Add(time.Duration(i) * time.Second)
		p := textPush(t, k, true, at, fmt.Sprintf("# TYPE r gauge\nr{i=\"1\"} %d\nr{i=\"2\"} 2\n", i))
		apply(t, full, p)
		r := store.Repeat{Key: k, Replace: true, Shape: 1, Values: []float64{float64(i), 2}, Time: at}
		if repeats.ApplyRepeat(r) {
			return true
		}
		apply(t, repeats, p)
		repeats.LearnRepeat(r, func() [][]byte { return series })
		return false
	}
	require.False(t, push(0), "no shape yet")
	require.False(t, push(1), "a shape is learnt on its second push")
	for i, f := range []store.Format{store.FormatProtoDelim, store.FormatOpenMetrics, store.FormatProtoDelim} {
		require.Equal(t, scrape(t, full, f), scrape(t, repeats, f), f)
		require.Positive(t, repeats.RenderCacheBytes(), "%s: the scrape keeps its renderings", f)
		require.Equal(t, full.RenderCacheBytes(), repeats.RenderCacheBytes(), "%s: after the scrape", f)
		require.True(t, push(2+i), "%s: the push repeats", f)
		require.Equal(t, full.RenderCacheBytes(), repeats.RenderCacheBytes(), "%s: after the push", f)
		checkInvariants(t, repeats)
	}
}
