package store_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// RangeSummaries orders groups by job, then key, and each summary agrees
// with the group's snapshot: the families without the time gauges, the
// series of Stats, the push and failure times.
func TestRangeSummaries(t *testing.T) {
	s, _ := newStore(t, nil)
	apply(t, s, textPush(t, key("job", "b", "a", "z"), true, t1, "c_total 3\n"))
	apply(t, s, textPush(t, key("job", "a", "z", "a"), true, t1, `# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 2
h_sum 3
h_count 2
# TYPE s summary
s{quantile="0.5"} 4
s_sum 5
s_count 6
`))
	require.True(t, s.RecordFailure(key("job", "a", "z", "a"), t2))
	require.True(t, s.RecordFailure(key("job", "c"), t2))

	var got []store.GroupSummary
	s.RangeSummaries(func(g store.GroupSummary) bool { got = append(got, g); return true })
	require.Len(t, got, 3)
	require.Equal(t, []string{"a", "b", "c"}, []string{job(got[0].Key), job(got[1].Key), job(got[2].Key)},
		"ordered by job, although the key of job b sorts first by its label a")

	series := 0
	for _, g := range s.Snapshot() {
		var sum store.GroupSummary
		for _, x := range got {
			if x.Key == g.Key {
				sum = x
			}
		}
		require.Equal(t, store.SummaryOf(g), sum, "summary of %v", g.Key.Map())
		series += sum.Series
	}
	_, want := s.Stats()
	require.Equal(t, want, series, "series as Stats counts them")

	require.Equal(t, 2, got[0].Families, "histogram and summary, without the time gauges")
	require.False(t, got[0].LastPushSuccessful())
	require.InDelta(t, float64(t1.UnixNano())/1e9, got[0].PushTime, 1e-3)
	require.InDelta(t, float64(t2.UnixNano())/1e9, got[0].FailureTime, 1e-3)
	require.True(t, got[1].LastPushSuccessful())
	require.Equal(t, 0, got[2].Families, "a group of failures only")
	require.Zero(t, got[2].PushTime)

	n := 0
	s.RangeSummaries(func(store.GroupSummary) bool { n++; return false })
	require.Equal(t, 1, n, "stops when asked")
}

// RangeSummaries visits every group of a store larger than one batch.
func TestRangeSummariesBatches(t *testing.T) {
	s, _ := newStore(t, nil)
	for i := range 600 {
		apply(t, s, textPush(t, key("job", fmt.Sprintf("j%04d", i)), true, t1, "g 1\n"))
	}
	var jobs []string
	s.RangeSummaries(func(g store.GroupSummary) bool { jobs = append(jobs, job(g.Key)); return true })
	require.Len(t, jobs, 600)
	require.IsNonDecreasing(t, jobs)
}

func job(k store.GroupKey) string { v, _ := k.Get("job"); return v }

// The job of a key is found without splitting it, wherever job sorts.
func TestKeyJob(t *testing.T) {
	for _, kv := range [][]string{{"job", "a"}, {"a", "x", "job", "b", "z", "y"}, {"a", "job", "job", ""}, {"job", "j", "zz", "job"}} {
		k := key(kv...)
		want, _ := k.Get("job")
		require.Equal(t, want, store.KeyJob(k), "%v", kv)
	}
}

// RangeSummaries shows the groups the store exposes, as Range does.
func TestRangeSummariesExposure(t *testing.T) {
	s, _ := newStore(t, nil)
	shown, held := key("job", "shown"), key("job", "held")
	apply(t, s, textPush(t, shown, true, t1, "m_shown 1\n"))
	apply(t, s, textPush(t, held, true, t1, "m_held 2\n"))
	s.SetExposure(&exposeOnly{hashes: map[uint64]bool{shown.Hash(): true}})
	var got []store.GroupKey
	s.RangeSummaries(func(g store.GroupSummary) bool { got = append(got, g.Key); return true })
	require.Equal(t, []store.GroupKey{shown}, got)
}
