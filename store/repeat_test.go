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

// A shape whose lines the store cannot match is tried again after 1, 2,
// 4, ... pushes of it, then every 64th, not on every push; once its lines
// match, the next try learns it and the push after repeats.
func TestLearnRepeatBacksOff(t *testing.T) {
	s, _ := newStore(t, nil)
	k := key("job", "b")
	lines := [][]byte{[]byte(`r{i="1", x="y"}`), []byte(`r{i="2"}`)} // as no stored line is
	var tries []int
	push := func(i int) (repeated bool) {
		at := t1.Add(time.Duration(i) * time.Second)
		r := store.Repeat{Key: k, Replace: true, Shape: 1, Values: []float64{float64(i), 2}, Time: at}
		if s.ApplyRepeat(r) {
			return true
		}
		apply(t, s, textPush(t, k, true, at, fmt.Sprintf("# TYPE r gauge\nr{i=\"1\"} %d\nr{i=\"2\"} 2\n", i)))
		s.LearnRepeat(r, func() [][]byte { tries = append(tries, i); return lines })
		return false
	}
	for i := range 200 {
		require.False(t, push(i), "push %d", i)
	}
	require.Equal(t, []int{1, 2, 3, 5, 9, 17, 33, 65, 129, 193}, tries, "the pushes that tried")

	lines = [][]byte{[]byte(`r{i="1"}`), []byte(`r{i="2"}`)}
	for i := 200; i <= 257; i++ {
		require.False(t, push(i), "push %d", i)
	}
	require.Equal(t, 257, tries[len(tries)-1], "the next try")
	require.True(t, push(258), "learnt at the try before")

	// A learnt shape that a write voided and that then fails is tried
	// again from the start of the schedule: at the next push.
	lines = [][]byte{[]byte(`r{i="1", x="y"}`), []byte(`r{i="2"}`)}
	at := t1.Add(259 * time.Second)
	apply(t, s, textPush(t, k, true, at, "# TYPE r gauge\nr{i=\"1\"} 0.5\nr{i=\"2\"} 2\n"))
	s.LearnRepeat(store.Repeat{Key: k, Replace: true, Shape: 1, Values: []float64{0.5, 2}, Time: at}, func() [][]byte { tries = append(tries, 259); return lines })
	for i := 260; i < 270; i++ {
		require.False(t, push(i), "push %d", i)
	}
	require.Equal(t, []int{257, 259, 260, 261, 263, 267}, tries[len(tries)-6:])
}
