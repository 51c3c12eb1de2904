package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// ttlPush is a sanitised text push with a TTL.
func ttlPush(t testing.TB, k store.GroupKey, replace bool, at time.Time, ttl time.Duration, text string) store.Push {
	t.Helper()
	p := textPush(t, k, replace, at, text)
	p.TTL = ttl
	return p
}

// deadline returns the deadline of group k, failing if it does not exist.
func deadline(t testing.TB, s *store.Store, k store.GroupKey) time.Time {
	t.Helper()
	return group(t, s, k).Deadline
}

func TestDeadlineFollowsSuccessfulPushes(t *testing.T) {
	k := key("job", "j")
	const body = "# TYPE m gauge\nm 1\n"
	type step struct {
		name string
		do   func(t *testing.T, s *store.Store)
		want time.Time // zero: no deadline
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"PUT sets and PUT extends", []step{
			{"PUT", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t1, time.Hour, body)) }, t1.Add(time.Hour)},
			{"PUT later", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t2, time.Hour, body)) }, t2.Add(time.Hour)},
		}},
		{"POST extends, with its own TTL", []step{
			{"PUT", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t1, time.Hour, body)) }, t1.Add(time.Hour)},
			{"POST", func(t *testing.T, s *store.Store) {
				apply(t, s, ttlPush(t, k, false, t2, time.Minute, "# TYPE other counter\nother 1\n"))
			}, t2.Add(time.Minute)},
		}},
		{"TTL 0 clears the deadline", []step{
			{"PUT", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t1, time.Hour, body)) }, t1.Add(time.Hour)},
			{"PUT without TTL", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t2, 0, body)) }, time.Time{}},
			{"PUT with TTL again", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t3, time.Hour, body)) }, t3.Add(time.Hour)},
		}},
		{"an inconsistent push does not extend", []step{
			{"PUT", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t1, time.Hour, body)) }, t1.Add(time.Hour)},
			{"POST of another type", func(t *testing.T, s *store.Store) {
				apply(t, s, ttlPush(t, key("job", "other"), true, t1, 0, "# TYPE clash gauge\nclash 1\n"))
				err := s.Apply(ttlPush(t, k, false, t2, 24*time.Hour, "# TYPE clash counter\nclash 1\n"))
				require.ErrorIs(t, err, store.ErrInconsistent)
				require.Equal(t, float64(t2.UnixNano())/1e9, gaugeValue(t, group(t, s, k), store.PushFailureTimeName), "the failure is recorded")
			}, t1.Add(time.Hour)},
		}},
		{"a push with timestamps does not extend", []step{
			{"PUT", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t1, time.Hour, body)) }, t1.Add(time.Hour)},
			{"PUT with timestamp", func(t *testing.T, s *store.Store) {
				require.ErrorIs(t, s.Apply(ttlPush(t, k, true, t2, time.Hour, "m 1 1000\n")), store.ErrInconsistent)
			}, t1.Add(time.Hour)},
		}},
		{"RecordFailure does not extend or clear", []step{
			{"PUT", func(t *testing.T, s *store.Store) { apply(t, s, ttlPush(t, k, true, t1, time.Hour, body)) }, t1.Add(time.Hour)},
			{"RecordFailure", func(t *testing.T, s *store.Store) { require.True(t, s.RecordFailure(k, t2)) }, t1.Add(time.Hour)},
		}},
		{"a failed first push gives the group it creates its deadline", []step{
			{"PUT with timestamp", func(t *testing.T, s *store.Store) {
				require.ErrorIs(t, s.Apply(ttlPush(t, k, true, t1, time.Hour, "m 1 1000\n")), store.ErrInconsistent)
			}, t1.Add(time.Hour)},
			{"failed again later", func(t *testing.T, s *store.Store) {
				require.ErrorIs(t, s.Apply(ttlPush(t, k, true, t2, time.Hour, "m 1 1000\n")), store.ErrInconsistent)
			}, t1.Add(time.Hour)},
		}},
		{"a group RecordFailure creates never expires", []step{
			{"RecordFailure", func(t *testing.T, s *store.Store) { require.True(t, s.RecordFailure(k, t1)) }, time.Time{}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, nil)
			for _, st := range tc.steps {
				st.do(t, s)
				checkInvariants(t, s)
				got := deadline(t, s, k)
				require.True(t, st.want.Equal(got), "%s: want deadline %v, got %v", st.name, st.want, got)
			}
		})
	}
}

func TestExpireRemovesExactlyTheDueGroups(t *testing.T) {
	s, reg := newStore(t, nil)
	const n = 1000
	t0 := time.Unix(1_800_000_000, 0)
	// Group i is due at t0+i s; pushed in random order, so the heap sees
	// every shape. Every tenth is pushed again with a later deadline, every
	// 25th once more without TTL, and 50 groups never had one.
	due := map[store.GroupKey]time.Time{}
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		k := key("job", "ttl", "i", fmt.Sprint(i))
		p := ttlPush(t, k, true, t0.Add(time.Duration(i)*time.Second-time.Hour), time.Hour, "# TYPE shared gauge\nshared 1\n")
		require.NoError(t, s.Apply(p))
		due[k] = p.Time.Add(p.TTL)
		switch {
		case i%25 == 0:
			require.NoError(t, s.Apply(ttlPush(t, k, false, t0, 0, "# TYPE own counter\nown 1\n")))
			due[k] = time.Time{}
		case i%10 == 0:
			require.NoError(t, s.Apply(ttlPush(t, k, false, p.Time, 2*time.Hour, "# TYPE own counter\nown 1\n")))
			due[k] = p.Time.Add(2 * time.Hour)
		}
	}
	for i := range 50 {
		k := key("job", "forever", "i", fmt.Sprint(i))
		require.NoError(t, s.Apply(textPush(t, k, true, t0, "# TYPE shared gauge\nshared 1\n")))
		due[k] = time.Time{}
	}
	checkInvariants(t, s)

	expired := 0
	for _, at := range []time.Time{t0.Add(-time.Nanosecond), t0, t0.Add(500 * time.Second), t0.Add(500 * time.Second), t0.Add(3 * time.Hour)} {
		want := 0
		for k, d := range due {
			if !d.IsZero() && !d.After(at) {
				want++
				delete(due, k)
			}
		}
		require.Equal(t, want, s.Expire(at), "expire at %v", at)
		expired += want
		checkInvariants(t, s)
		var left []string
		for _, g := range s.Snapshot() {
			left = append(left, g.Key.String())
		}
		require.Equal(t, sortedKeys(due), left, "groups left after %v", at)
		require.Equal(t, float64(expired), metricValue(t, reg, "pushring_groups_expired_total"))
	}
	require.Greater(t, expired, n/2)
	require.Equal(t, 0, s.ExpiryQueueLen(), "only groups without TTL are left")
}

// sortedKeys returns the encoded keys of m in Snapshot's order.
func sortedKeys[V any](m map[store.GroupKey]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k.String())
	}
	slices.Sort(ks)
	return ks
}

func TestExpireActsLikeDelete(t *testing.T) {
	s, reg := newStore(t, nil)
	a, b := key("job", "a"), key("job", "b")
	apply(t, s, ttlPush(t, a, true, t1, time.Minute, "# TYPE shared gauge\nshared 1\n# TYPE only_a counter\nonly_a 1\n"))
	apply(t, s, textPush(t, b, true, t1, "# TYPE shared gauge\nshared 2\n"))
	drainChanged(s)

	require.Zero(t, s.Expire(t1.Add(time.Minute-time.Nanosecond)))
	requireNoChange(t, s)
	require.Contains(t, string(scrape(t, s, store.FormatText)), `only_a{instance="",job="a"} 1`)

	require.Equal(t, 1, s.Expire(t1.Add(time.Minute)))
	requireChanged(t, s)
	checkInvariants(t, s)
	for _, f := range []store.Format{store.FormatText, store.FormatProtoDelim, store.FormatOpenMetrics} {
		out := string(scrape(t, s, f))
		require.NotContains(t, out, "only_a", f.String())
		require.NotContains(t, out, `job="a"`, f.String())
	}
	require.Contains(t, string(scrape(t, s, store.FormatText)), `shared{instance="",job="b"} 2`)
	_, ok := s.Group(a)
	require.False(t, ok)
	groups, series := s.Stats()
	require.Equal(t, 1, groups)
	require.Equal(t, 3, series, "b's sample and its two push-time gauges")
	require.Equal(t, 3.0, metricValue(t, reg, "pushring_store_series"))
	require.Equal(t, 1.0, metricValue(t, reg, "pushring_store_groups"))

	// The freed names and series can be pushed again, by anyone.
	apply(t, s, textPush(t, b, false, t2, "# TYPE only_a gauge\nonly_a 1\n"))
}

func drainChanged(s *store.Store) {
	select {
	case <-s.Changed():
	default:
	}
}

func requireChanged(t *testing.T, s *store.Store) {
	t.Helper()
	select {
	case <-s.Changed():
	default:
		t.Fatal("Changed was not signalled")
	}
}

func requireNoChange(t *testing.T, s *store.Store) {
	t.Helper()
	select {
	case <-s.Changed():
		t.Fatal("Changed was signalled without a change")
	default:
	}
}

func TestExpireManyAtOnce(t *testing.T) {
	// More due groups than one pass under the lock removes.
	s, _ := newStore(t, nil)
	const n = 2500
	for i := range n {
		require.NoError(t, s.Apply(ttlPush(t, key("job", "j", "i", fmt.Sprint(i)), true, t1, time.Minute, "# TYPE m gauge\nm 1\n")))
	}
	require.Equal(t, n, s.Expire(t2))
	groups, series := s.Stats()
	require.Zero(t, groups)
	require.Zero(t, series)
	checkInvariants(t, s)
}

func TestWipeForgetsDeadlines(t *testing.T) {
	s, _ := newStore(t, nil)
	apply(t, s, ttlPush(t, key("job", "a"), true, t1, time.Minute, "# TYPE m gauge\nm 1\n"))
	require.Equal(t, 1, s.Wipe())
	require.Zero(t, s.ExpiryQueueLen())
	require.Zero(t, s.Expire(t3))
	checkInvariants(t, s)
}

// runExpiry runs s.RunExpiry with the real clock (fake inside a synctest
// bubble) until the returned stop is called; stop returns RunExpiry's error.
func runExpiry(t *testing.T, s *store.Store) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.RunExpiry(ctx, store.RealClock{}) }()
	return func() error {
		cancel()
		return <-done
	}
}

// advanceTo moves the fake clock of the bubble to at and lets every
// goroutine settle. Sleeping in a bubble only advances the fake clock.
func advanceTo(at time.Time) {
	time.Sleep(time.Until(at))
	synctest.Wait()
}

func exists(s *store.Store, k store.GroupKey) bool {
	_, ok := s.Group(k)
	return ok
}

func TestRunExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newStore(t, nil)
		stop := runExpiry(t, s)
		start := time.Now()
		long, short, extended := key("job", "long"), key("job", "short"), key("job", "extended")
		const body = "# TYPE m gauge\nm 1\n"

		apply(t, s, ttlPush(t, long, true, start, time.Hour, body))
		apply(t, s, ttlPush(t, extended, true, start, 20*time.Minute, body))
		synctest.Wait() // RunExpiry is asleep until the first deadline

		// An earlier deadline than any before re-arms RunExpiry: short
		// goes after 10 s, not at the 20 min it slept towards.
		advanceTo(start.Add(time.Minute))
		apply(t, s, ttlPush(t, short, true, time.Now(), 10*time.Second, body))
		advanceTo(start.Add(time.Minute + 10*time.Second - time.Nanosecond))
		require.True(t, exists(s, short), "short expired before its deadline")
		advanceTo(start.Add(time.Minute + 10*time.Second))
		require.False(t, exists(s, short), "short outlived its deadline")
		require.True(t, exists(s, long))

		// A push moves extended's deadline; the old one passes harmlessly.
		advanceTo(start.Add(15 * time.Minute))
		apply(t, s, ttlPush(t, extended, true, time.Now(), 20*time.Minute, body))
		advanceTo(start.Add(35*time.Minute - time.Nanosecond))
		require.True(t, exists(s, extended), "extended expired at its old deadline or before its new one")
		advanceTo(start.Add(35 * time.Minute))
		require.False(t, exists(s, extended))

		advanceTo(start.Add(time.Hour - time.Nanosecond))
		require.True(t, exists(s, long))
		advanceTo(start.Add(time.Hour))
		require.False(t, exists(s, long))

		// With no deadline left it waits for ctx alone.
		advanceTo(start.Add(100 * time.Hour))
		require.NoError(t, stop())
		checkInvariants(t, s)
	})
}

func TestRunExpiryRoundsUpToItsResolution(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newStore(t, nil)
		stop := runExpiry(t, s)
		start := time.Now().Truncate(time.Second)
		a, b := key("job", "a"), key("job", "b")
		apply(t, s, ttlPush(t, a, true, start, time.Minute+time.Millisecond, "# TYPE m gauge\nm 1\n"))
		apply(t, s, ttlPush(t, b, true, start, time.Minute+99*time.Millisecond, "# TYPE n gauge\nn 1\n"))
		advanceTo(start.Add(time.Minute + 99*time.Millisecond))
		require.True(t, exists(s, a) && exists(s, b), "both go in one pass, 100 ms after the minute")
		advanceTo(start.Add(time.Minute + 100*time.Millisecond))
		require.False(t, exists(s, a) || exists(s, b))
		require.NoError(t, stop())
	})
}

func TestRunExpiryStopsOnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newStore(t, nil)
		stop := runExpiry(t, s)
		apply(t, s, ttlPush(t, key("job", "a"), true, time.Now(), time.Hour, "# TYPE m gauge\nm 1\n"))
		synctest.Wait()
		require.NoError(t, stop(), "it returns nil while a timer is armed")
		// The bubble ends only when every goroutine it started has ended:
		// synctest.Test fails otherwise, so no goroutine or timer leaks.
	})
}

func TestRestoreDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, _ := newStore(t, nil)
		now := time.Now()
		past, future, never := key("job", "past"), key("job", "future"), key("job", "never")
		apply(t, src, ttlPush(t, past, true, now.Add(-2*time.Hour), time.Hour, "# TYPE m gauge\nm 1\n"))
		apply(t, src, ttlPush(t, future, true, now, time.Hour, "# TYPE m gauge\nm 2\n"))
		apply(t, src, textPush(t, never, true, now, "# TYPE m gauge\nm 3\n"))
		snap := src.Snapshot() // future, never, past
		require.Equal(t, []store.GroupKey{future, never, past}, []store.GroupKey{snap[0].Key, snap[1].Key, snap[2].Key})
		require.True(t, snap[0].Deadline.Equal(now.Add(time.Hour)), "snapshot carries the deadline")
		require.True(t, snap[1].Deadline.IsZero())

		dst, reg := newStore(t, nil)
		require.NoError(t, dst.Restore(snap))
		checkInvariants(t, dst)
		requireSameSnapshots(t, snap[:2], dst.Snapshot())
		require.Equal(t, 1.0, metricValue(t, reg, "pushring_groups_expired_total"), "the group already past its deadline counts as expired")

		// The restored deadline is live: RunExpiry removes the group then.
		stop := runExpiry(t, dst)
		advanceTo(now.Add(time.Hour))
		require.False(t, exists(dst, future))
		require.True(t, exists(dst, never))
		require.NoError(t, stop())
	})
}
