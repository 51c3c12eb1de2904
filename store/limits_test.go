package store_test

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// newLimitedStore returns an empty store with the given limits.
func newLimitedStore(t testing.TB, maxGroups, maxSeries int) (*store.Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := store.New(store.Config{MaxGroups: maxGroups, MaxSeries: maxSeries}, nil, reg)
	require.NoError(t, err)
	return s, reg
}

// gaugeLines returns a text body of one gauge family with n series.
func gaugeLines(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
	for i := range n {
		fmt.Fprintf(&b, "%s{s=\"%d\"} %d\n", name, i, i)
	}
	return b.String()
}

func TestLimits(t *testing.T) {
	a, b, c := key("job", "a"), key("job", "b"), key("job", "c")
	// Every group holds its samples plus the two push-time gauges.
	cases := []struct {
		name                 string
		maxGroups, maxSeries int
		setup                []store.Push
		push                 func(t *testing.T) store.Push
		wantErr              string // "" for success
		wantReason           string
	}{
		{
			name: "new group at the group limit", maxGroups: 2,
			setup:   []store.Push{textPush(t, a, true, t1, gaugeLines("m", 1)), textPush(t, b, true, t1, gaugeLines("m", 1))},
			push:    func(t *testing.T) store.Push { return textPush(t, c, true, t2, gaugeLines("m", 1)) },
			wantErr: "push refused: it would create group 3 but this peer holds at most 2 groups; raise --store.max-groups", wantReason: "max_groups",
		},
		{
			name: "update at the group limit", maxGroups: 2,
			setup: []store.Push{textPush(t, a, true, t1, gaugeLines("m", 1)), textPush(t, b, true, t1, gaugeLines("m", 1))},
			push:  func(t *testing.T) store.Push { return textPush(t, a, false, t2, gaugeLines("other", 50)) },
		},
		{
			name: "new group past the series limit", maxSeries: 7,
			setup:   []store.Push{textPush(t, a, true, t1, gaugeLines("m", 3))},
			push:    func(t *testing.T) store.Push { return textPush(t, b, true, t2, gaugeLines("m_b", 1)) },
			wantErr: "push refused: it would add 3 series to the 5 stored but this peer holds at most 7 series; raise --store.max-series", wantReason: "max_series",
		},
		{
			name: "PUT growing exactly to the series limit", maxSeries: 7,
			setup: []store.Push{textPush(t, a, true, t1, gaugeLines("m", 3))},
			push:  func(t *testing.T) store.Push { return textPush(t, a, true, t2, gaugeLines("n", 5)) },
		},
		{
			name: "PUT growing past the series limit", maxSeries: 7,
			setup:   []store.Push{textPush(t, a, true, t1, gaugeLines("m", 3))},
			push:    func(t *testing.T) store.Push { return textPush(t, a, true, t2, gaugeLines("m", 3)+gaugeLines("n", 3)) },
			wantErr: "push refused: it would add 3 series to the 5 stored but this peer holds at most 7 series; raise --store.max-series", wantReason: "max_series",
		},
		{
			name: "PUT replacing as many series at the series limit", maxSeries: 5,
			setup: []store.Push{textPush(t, a, true, t1, gaugeLines("m", 3))},
			push:  func(t *testing.T) store.Push { return textPush(t, a, true, t2, gaugeLines("other", 3)) },
		},
		{
			name: "POST replacing a family with as many series at the series limit", maxSeries: 7,
			setup: []store.Push{textPush(t, a, true, t1, gaugeLines("m", 3)+gaugeLines("n", 2))},
			push:  func(t *testing.T) store.Push { return textPush(t, a, false, t2, gaugeLines("n", 2)) },
		},
		{
			name: "POST adding a family at the series limit", maxSeries: 7,
			setup:   []store.Push{textPush(t, a, true, t1, gaugeLines("m", 3)+gaugeLines("n", 2))},
			push:    func(t *testing.T) store.Push { return textPush(t, a, false, t2, gaugeLines("o", 1)) },
			wantErr: "push refused: it would add 1 series to the 7 stored but this peer holds at most 7 series; raise --store.max-series", wantReason: "max_series",
		},
		{
			name: "shrinking PUT at the series limit", maxSeries: 5,
			setup: []store.Push{textPush(t, a, true, t1, gaugeLines("m", 3))},
			push:  func(t *testing.T) store.Push { return textPush(t, a, true, t2, gaugeLines("m", 1)) },
		},
		{
			name: "empty push of a new group counts its two gauges", maxSeries: 1,
			push:    func(t *testing.T) store.Push { return store.Push{Key: a, Replace: true, Time: t2} },
			wantErr: "push refused: it would add 2 series to the 0 stored but this peer holds at most 1 series; raise --store.max-series", wantReason: "max_series",
		},
		{
			name: "an invalid push of a new group at the group limit is refused by the limit", maxGroups: 1,
			setup:   []store.Push{textPush(t, a, true, t1, gaugeLines("m", 1))},
			push:    func(t *testing.T) store.Push { return textPush(t, b, true, t2, "# TYPE m counter\nm 1\n") }, // m is a gauge in a
			wantErr: "push refused: it would create group 2 but this peer holds at most 1 groups; raise --store.max-groups", wantReason: "max_groups",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newLimitedStore(t, tc.maxGroups, tc.maxSeries)
			for _, p := range tc.setup {
				apply(t, s, p)
			}
			before := s.Snapshot()
			err := s.Apply(tc.push(t))
			checkInvariants(t, s)
			if tc.wantErr == "" {
				require.NoError(t, err)
				groups, series := s.Stats()
				if tc.maxSeries > 0 {
					require.LessOrEqual(t, series, tc.maxSeries)
				}
				if tc.maxGroups > 0 {
					require.LessOrEqual(t, groups, tc.maxGroups)
				}
				return
			}
			require.ErrorIs(t, err, store.ErrLimit)
			require.False(t, errors.Is(err, store.ErrInconsistent), "a limit is not a 400")
			require.EqualError(t, err, tc.wantErr)
			requireSameSnapshots(t, before, s.Snapshot())
			require.Equal(t, tc.wantReason, store.RejectReason(err))
		})
	}
}

func TestLimitsKeepFailuresFromCreatingGroups(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := store.New(store.Config{MaxGroups: 1, MaxFailureGroups: 1}, nil, reg)
	require.NoError(t, err)
	a, b, c := key("job", "a"), key("job", "b"), key("job", "c")
	apply(t, s, textPush(t, a, true, t1, gaugeLines("m", 1)))

	// A push rejected for its timestamps records b's failure time by
	// creating b, a failure-only group: past the group limit, within the
	// failure-only one. c's would pass that.
	require.ErrorIs(t, s.Apply(textPush(t, b, true, t2, "m 1 1000\n")), store.ErrInconsistent)
	require.True(t, exists(s, b))
	require.ErrorIs(t, s.Apply(textPush(t, c, true, t2, "m 1 1000\n")), store.ErrInconsistent)
	require.False(t, s.RecordFailure(c, t2))
	require.False(t, exists(s, c))
	require.Equal(t, 2.0, metricValue(t, reg, "pushring_store_failure_times_unrecorded_total"))

	// An existing group still records failures.
	require.ErrorIs(t, s.Apply(textPush(t, a, true, t2, "m 1 1000\n")), store.ErrInconsistent)
	require.Equal(t, float64(t2.UnixNano())/1e9, gaugeValue(t, group(t, s, a), store.PushFailureTimeName))
}

func TestCardinalityAttack(t *testing.T) {
	const limit, attackers, perAttacker = 1000, 4, 1250 // 5,000 distinct groups
	s, _ := newLimitedStore(t, limit, 0)
	var (
		mu      sync.Mutex
		ok      int
		refused int
		other   []error
		wg      sync.WaitGroup
	)
	attack := func(w, i int) store.Push {
		k := key("job", "attack", "instance", fmt.Sprintf("%d-%d", w, i))
		return famPush(k, true, t1, fam("attack_series", dto.MetricType_GAUGE, nil, gaugeM(1, "node", "x")))
	}
	push := func(p store.Push) {
		err := s.Apply(p)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrLimit) && store.RejectReason(err) == "max_groups":
			refused++
		default:
			other = append(other, err)
		}
	}
	// The first 1000 groups fill the store...
	for i := range limit {
		push(attack(-1, i))
	}
	before := s.Snapshot()
	require.Len(t, before, limit)
	// ...then 4000 more distinct ones race against each other and against
	// updates of stored groups, which keep succeeding.
	for w := range attackers {
		var ps []store.Push // built here: t may only fail the test from this goroutine
		for i := range perAttacker - limit/attackers {
			ps = append(ps, attack(w, i))
		}
		wg.Go(func() {
			for _, p := range ps {
				push(p)
			}
		})
	}
	updated := key("job", "attack", "instance", "-1-0")
	for range 10 {
		require.NoError(t, s.Apply(textPush(t, updated, true, t2, "# TYPE attack_series gauge\nattack_series{node=\"x\"} 2\n")))
	}
	wg.Wait()

	require.Empty(t, other)
	require.Equal(t, limit, ok)
	require.Equal(t, attackers*perAttacker-limit, refused)
	groups, _ := s.Stats()
	require.Equal(t, limit, groups)
	checkInvariants(t, s)

	// Stored data is intact: only the group updated on purpose changed.
	after := s.Snapshot()
	for i := range before {
		if before[i].Key == updated {
			require.Equal(t, updated, after[i].Key)
			before[i] = after[i]
		}
	}
	requireSameSnapshots(t, before, after)
}

func TestRestoreRespectsLimits(t *testing.T) {
	src, _ := newStore(t, nil)
	for _, j := range []string{"a", "b", "c"} {
		apply(t, src, textPush(t, key("job", j), true, t1, gaugeLines("m_"+j, 1)))
	}
	s, _ := newLimitedStore(t, 2, 0)
	err := s.Restore(src.Snapshot())
	require.ErrorIs(t, err, store.ErrLimit)
	require.ErrorContains(t, err, "--store.max-groups")
	groups, _ := s.Stats()
	require.Equal(t, 2, groups)
}

func TestConfigFlags(t *testing.T) {
	cases := []struct {
		name               string
		args               []string
		wantGroups, wantSe int
		wantErr            string
	}{
		{"defaults", nil, store.DefaultMaxGroups, store.DefaultMaxSeries, ""},
		{"set", []string{"--store.max-groups=10", "--store.max-series=100"}, 10, 100, ""},
		{"unlimited", []string{"--store.max-groups=0", "--store.max-series=0"}, 0, 0, ""},
		{"negative groups", []string{"--store.max-groups=-1"}, -1, store.DefaultMaxSeries, "--store.max-groups must not be negative, got -1"},
		{"negative series", []string{"--store.max-series=-5"}, store.DefaultMaxGroups, -5, "--store.max-series must not be negative, got -5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg store.Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			require.NoError(t, fs.Parse(tc.args))
			require.Equal(t, tc.wantGroups, cfg.MaxGroups)
			require.Equal(t, tc.wantSe, cfg.MaxSeries)
			if tc.wantErr == "" {
				require.NoError(t, cfg.Validate())
				return
			}
			require.EqualError(t, cfg.Validate(), tc.wantErr)
			_, err := store.New(cfg, nil, nil)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	require.Equal(t, 200_000, store.DefaultMaxGroups)
	require.Equal(t, 2_000_000, store.DefaultMaxSeries)
}

// TestLimitRefusalLeavesDeadline checks that a refused push does not extend
// the TTL of the group it was for.
func TestLimitRefusalLeavesDeadline(t *testing.T) {
	s, _ := newLimitedStore(t, 0, 5)
	a := key("job", "a")
	apply(t, s, ttlPush(t, a, true, t1, time.Minute, gaugeLines("m", 3)))
	require.ErrorIs(t, s.Apply(ttlPush(t, a, true, t2, time.Hour, gaugeLines("m", 4))), store.ErrLimit)
	require.True(t, deadline(t, s, a).Equal(t1.Add(time.Minute)))
}

// TestSeriesAreSampleLines: the store counts series as Prometheus does,
// one per sample line, so a histogram with two buckets (le="1" and
// le="+Inf") is four series with its _sum and _count, and the limit
// applies to those.
func TestSeriesAreSampleLines(t *testing.T) {
	const hist = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
	now := time.Unix(1700000000, 0)

	st, _ := newStore(t, nil)
	apply(t, st, textPush(t, key("job", "a"), true, now, hist))
	_, series := st.Stats()
	require.Equal(t, 4+2, series, "4 histogram lines and the two push-time gauges")

	// 6 series fit a limit of 6; a second group of the same shape does not.
	lim, _ := newLimitedStore(t, 0, 6)
	apply(t, lim, textPush(t, key("job", "a"), true, now, hist))
	err := lim.Apply(textPush(t, key("job", "b"), true, now, hist))
	require.ErrorIs(t, err, store.ErrLimit)
	require.Contains(t, err.Error(), "it would add 6 series to the 6 stored")
}

// Refused pushes for new groups create failure-only groups, which count
// against --store.max-failure-groups, not --store.max-groups: 1,000 of them
// leave room for valid pushers. Past their own bound they go unrecorded,
// and a valid push to one turns it into a counted group.
func TestFailureOnlyGroupsDoNotLockOutValidPushers(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := store.New(store.Config{MaxGroups: 100, MaxFailureGroups: 1000}, nil, reg)
	require.NoError(t, err)
	stamped := "# TYPE m gauge\nm 1 1700000000000\n" // refused: a timestamp
	for i := range 1000 {
		err := s.Apply(textPush(t, key("job", "bad", "i", fmt.Sprint(i)), true, t1, stamped))
		require.ErrorIs(t, err, store.ErrInconsistent)
	}
	groups, _ := s.Stats()
	require.Equal(t, 1000, groups, "every refusal recorded its failure time")

	err = s.Apply(textPush(t, key("job", "bad", "i", "1000"), true, t1, stamped))
	require.ErrorIs(t, err, store.ErrInconsistent)
	groups, _ = s.Stats()
	require.Equal(t, 1000, groups, "past --store.max-failure-groups the failure time is not recorded")

	for i := range 100 {
		apply(t, s, textPush(t, key("job", "good", "i", fmt.Sprint(i)), true, t2, gaugeLines("m", 1)))
	}
	err = s.Apply(textPush(t, key("job", "good", "i", "100"), true, t2, gaugeLines("m", 1)))
	require.ErrorIs(t, err, store.ErrLimit, "--store.max-groups still bounds the valid groups")

	// A valid push to a failure-only group makes it count: there is no
	// room left for it.
	err = s.Apply(textPush(t, key("job", "bad", "i", "0"), true, t2, gaugeLines("m", 1)))
	require.ErrorIs(t, err, store.ErrLimit)
	require.True(t, s.Delete(key("job", "good", "i", "0")))
	apply(t, s, textPush(t, key("job", "bad", "i", "0"), true, t2, gaugeLines("m", 1)))
	checkInvariants(t, s)

	// Restored, a failure-only group is failure-only again.
	r, err := store.New(store.Config{MaxGroups: 100, MaxFailureGroups: 1000}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, r.Restore(s.Snapshot()))
	groups, _ = r.Stats()
	require.Equal(t, 1099, groups, "100 valid groups (one was a failure-only one) and 999 failure-only ones, within --store.max-groups=100")
	checkInvariants(t, r)
	err = r.Apply(textPush(t, key("job", "good", "i", "5000"), true, t2, gaugeLines("m", 1)))
	require.ErrorIs(t, err, store.ErrLimit)
}

// --store.max-bytes bounds the sample bytes, which long label values grow
// and --store.max-series does not see; a replacement that does not grow
// the store passes.
func TestMaxBytesCountsLabelBytes(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := store.New(store.Config{MaxBytes: 20_000}, nil, reg)
	require.NoError(t, err)
	long := func(n int) string {
		var b strings.Builder
		b.WriteString("# TYPE m gauge\n")
		for i := range n {
			fmt.Fprintf(&b, "m{v=\"%s\",i=\"%d\"} 1\n", strings.Repeat("x", 300), i)
		}
		return b.String()
	}
	apply(t, s, textPush(t, key("job", "a"), true, t1, long(40)))
	err = s.Apply(textPush(t, key("job", "b"), true, t1, long(40)))
	require.ErrorIs(t, err, store.ErrLimit)
	require.ErrorContains(t, err, "bytes of samples to the")
	require.ErrorContains(t, err, "raise --store.max-bytes")
	require.Equal(t, store.LimitMaxBytes, store.RejectReason(err), "refusals are counted by the ingester, under this reason")
	apply(t, s, textPush(t, key("job", "a"), true, t2, long(40)))
	stored := metricValue(t, reg, "pushring_store_sample_bytes")
	require.Greater(t, stored, 40*300.0)
	require.LessOrEqual(t, stored, 20_000.0)
	require.True(t, s.Delete(key("job", "a")))
	require.Equal(t, 0.0, metricValue(t, reg, "pushring_store_sample_bytes"))
	apply(t, s, textPush(t, key("job", "b"), true, t2, long(40)))
	checkInvariants(t, s)
}
