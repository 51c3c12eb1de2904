package store_test

import (
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

func TestSnapshotIsDeepAndSorted(t *testing.T) {
	s := fixtureStore(t)
	snap := s.Snapshot()
	require.Len(t, snap, 3)
	for i := 1; i < len(snap); i++ {
		require.True(t, snap[i-1].Key.Less(snap[i].Key))
	}
	for _, g := range snap {
		for i := 1; i < len(g.Families); i++ {
			require.Less(t, g.Families[i-1].Family.GetName(), g.Families[i].Family.GetName())
		}
	}
	want := s.Snapshot()

	// Scribble over everything the caller got.
	for _, g := range snap {
		for _, fs := range g.Families {
			fs.Family.Name = proto.String("scribbled")
			for _, m := range fs.Family.Metric {
				m.Label[0].Value = proto.String("scribbled")
			}
		}
	}
	requireSameSnapshots(t, want, s.Snapshot())
}

func TestSnapshotFamilyDetails(t *testing.T) {
	s := fixtureStore(t)
	g := group(t, s, key("job", "batch"))
	require.Nil(t, family(g, "temperature").Family.Help, "a text family without HELP has none")
	require.Equal(t, t1, family(g, "temperature").Time)
	empty := family(g, "empty_family")
	require.NotNil(t, empty, "families without metrics are stored")
	require.Equal(t, t2, empty.Time)
	require.Equal(t, "Never shown.", empty.Family.GetHelp())

	api := group(t, s, key("job", "api", "instance", "i1"))
	require.Equal(t, "", *family(api, "proto_help").Family.Help)
	require.NotZero(t, api.Version)

	_, ok := s.Group(key("job", "nope"))
	require.False(t, ok)
}

func TestRestoreRoundTrip(t *testing.T) {
	src := fixtureStore(t)
	snap := src.Snapshot()
	dst, reg := newStore(t, map[string]dto.MetricType{"go_goroutines": dto.MetricType_GAUGE})
	require.NoError(t, dst.Restore(snap))
	checkInvariants(t, dst)
	requireSameSnapshots(t, snap, dst.Snapshot())
	for _, f := range []store.Format{store.FormatText, store.FormatProtoDelim, store.FormatOpenMetrics} {
		require.Equal(t, scrape(t, src, f, ownFamilies()...), scrape(t, dst, f, ownFamilies()...), f.String())
	}
	groups, series := src.Stats()
	g2, s2 := dst.Stats()
	require.Equal(t, []int{groups, series}, []int{g2, s2})
	require.Equal(t, float64(series), metricValue(t, reg, "pushring_store_series"))
	require.Len(t, dst.Changed(), 1)

	// The version counter moves past restored versions.
	var highest uint64
	for _, g := range snap {
		highest = max(highest, g.Version)
	}
	k := key("job", "new")
	apply(t, dst, textPush(t, k, true, t3, "m 1\n"))
	require.Greater(t, group(t, dst, k).Version, highest)
}

// pushgatewayGroup is a group as a Pushgateway persistence file holds it:
// gauges labelled as the Pushgateway labels them, per-family times, no
// version.
func pushgatewayGroup(k store.GroupKey, pushed, failed time.Time, mfs ...*dto.MetricFamily) store.GroupSnapshot {
	secs := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	g := store.GroupSnapshot{Key: k}
	fams := map[string]*dto.MetricFamily{
		store.PushTimeName: fam(store.PushTimeName, dto.MetricType_GAUGE,
			proto.String("Last Unix time when changing this group in the Pushgateway succeeded."), gaugeM(secs(pushed))),
		store.PushFailureTimeName: fam(store.PushFailureTimeName, dto.MetricType_GAUGE,
			proto.String("Last Unix time when changing this group in the Pushgateway failed."), gaugeM(secs(failed))),
	}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	sanitize(fams, k)
	for _, mf := range fams {
		g.Families = append(g.Families, store.FamilySnapshot{Family: mf, Time: pushed})
	}
	return g
}

func TestRestorePushgatewayGroups(t *testing.T) {
	s, _ := newStore(t, nil)
	good := pushgatewayGroup(key("job", "a"), t2, t3, fam("m", dto.MetricType_COUNTER, nil, counterM(1)))
	failedOnly := pushgatewayGroup(key("job", "b"), time.Time{}, t1)
	require.NoError(t, s.Restore([]store.GroupSnapshot{good, failedOnly}))
	checkInvariants(t, s)

	g := group(t, s, key("job", "a"))
	require.Equal(t, float64(t2.UnixNano())/1e9, gaugeValue(t, g, store.PushTimeName), "gauges are kept as given")
	require.False(t, g.LastPushSuccessful())
	require.Equal(t, t2, family(g, "m").Time)
	require.Zero(t, g.Version)
	require.False(t, group(t, s, key("job", "b")).LastPushSuccessful())
}

func TestRestoreSkipsInconsistentGroups(t *testing.T) {
	dupKeyA, dupKeyB := key("job", "j", "a", "1"), key("job", "j", "b", "2")
	dupSeries := func(k store.GroupKey) store.GroupSnapshot {
		return pushgatewayGroup(k, t1, time.Time{}, fam("m", dto.MetricType_GAUGE, nil, gaugeM(1, "a", "1", "b", "2")))
	}
	withTimestamp := pushgatewayGroup(key("job", "ts"), t1, time.Time{}, fam("n", dto.MetricType_GAUGE, nil,
		&dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(1)}, TimestampMs: proto.Int64(1)}))
	poisoned := pushgatewayGroup(key("job", "ie", "instance", ""), t1, time.Time{})
	twice := pushgatewayGroup(key("job", "twice"), t1, time.Time{})
	x := store.FamilySnapshot{Family: fam("x", dto.MetricType_GAUGE, nil, gaugeM(1))}
	twice.Families = append(twice.Families, x, x)
	groups := []store.GroupSnapshot{
		dupSeries(dupKeyA),
		dupSeries(dupKeyB),
		withTimestamp,
		pushgatewayGroup(key("job", "ie"), t1, time.Time{}),
		poisoned,
		twice,
		{Families: twice.Families},
	}

	s, _ := newStore(t, nil)
	err := s.Restore(groups)
	require.Error(t, err)
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	require.Len(t, joined.Unwrap(), 5)
	for _, e := range joined.Unwrap() {
		require.True(t, errors.Is(e, store.ErrInconsistent) || errors.Is(e, store.ErrInvalidKey), e.Error())
	}
	msg := err.Error()
	for _, want := range []string{
		`restore group {b="2",job="j"}: pushed metrics are invalid or inconsistent with existing metrics: collected metric "m"`,
		`restore group {job="ts"}: pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps`,
		`restore group {instance="",job="ie"}: pushed metrics are invalid or inconsistent with existing metrics: 2 error(s) occurred:`,
		`restore group {job="twice"}: pushed metrics are invalid or inconsistent with existing metrics: metric family "x" appears twice`,
		`restore group {}: invalid grouping key`,
	} {
		require.Contains(t, msg, want)
	}
	require.NotContains(t, msg, `{a="1",job="j"}`, "the first of two clashing groups is restored")
	checkInvariants(t, s)
	groupsLeft, _ := s.Stats()
	require.Equal(t, 2, groupsLeft)
	group(t, s, dupKeyA)
	group(t, s, key("job", "ie"))
}

func TestRestoreReplacesExistingGroup(t *testing.T) {
	s, _ := newStore(t, nil)
	k := key("job", "a")
	apply(t, s, textPush(t, k, true, t1, "old 1\n"))
	g := pushgatewayGroup(k, t2, time.Time{}, fam("new", dto.MetricType_GAUGE, nil, gaugeM(2)))
	g.Version = 77
	require.NoError(t, s.Restore([]store.GroupSnapshot{g}))
	got := group(t, s, k)
	require.Equal(t, []string{"new", store.PushFailureTimeName, store.PushTimeName}, familyNames(got))
	require.Equal(t, uint64(77), got.Version)
	checkInvariants(t, s)
}

func TestLastPushSuccessful(t *testing.T) {
	gauge := func(name string, v float64) store.FamilySnapshot {
		return store.FamilySnapshot{Family: fam(name, dto.MetricType_GAUGE, nil, gaugeM(v))}
	}
	cases := []struct {
		name string
		fams []store.FamilySnapshot
		want bool
	}{
		{"no gauges", nil, true},
		{"failure only", []store.FamilySnapshot{gauge(store.PushFailureTimeName, 5)}, true},
		{"success only", []store.FamilySnapshot{gauge(store.PushTimeName, 5)}, true},
		{"failure earlier", []store.FamilySnapshot{gauge(store.PushFailureTimeName, 4), gauge(store.PushTimeName, 5)}, true},
		{"equal", []store.FamilySnapshot{gauge(store.PushFailureTimeName, 5), gauge(store.PushTimeName, 5)}, true},
		{"failure later", []store.FamilySnapshot{gauge(store.PushFailureTimeName, 6), gauge(store.PushTimeName, 5)}, false},
		{"failure family without metrics", []store.FamilySnapshot{
			{Family: fam(store.PushFailureTimeName, dto.MetricType_GAUGE, nil)}, gauge(store.PushTimeName, 5)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, store.GroupSnapshot{Families: tc.fams}.LastPushSuccessful())
		})
	}
}

func requireSameSnapshots(t *testing.T, want, got []store.GroupSnapshot) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].Key, got[i].Key)
		require.Equal(t, want[i].Version, got[i].Version)
		require.True(t, want[i].Deadline.Equal(got[i].Deadline), "deadline of %v: want %v, got %v", want[i].Key.Map(), want[i].Deadline, got[i].Deadline)
		require.Len(t, got[i].Families, len(want[i].Families))
		for j := range want[i].Families {
			w, g := want[i].Families[j], got[i].Families[j]
			require.True(t, proto.Equal(w.Family, g.Family), "%v\n%v", w.Family, g.Family)
			require.True(t, w.Time.Equal(g.Time))
		}
	}
}

// Range visits the same groups in the same order as Snapshot, stops when
// asked, and skips a group deleted while it runs.
func TestRange(t *testing.T) {
	s, _ := newStore(t, nil)
	for _, j := range []string{"c", "a", "d", "b"} {
		apply(t, s, textPush(t, key("job", j), true, t1, "m{x=\""+j+"\"} 1\n"))
	}
	var got []store.GroupSnapshot
	s.Range(func(g store.GroupSnapshot) bool { got = append(got, g); return true })
	requireSameSnapshots(t, s.Snapshot(), got)

	var seen []string
	s.Range(func(g store.GroupSnapshot) bool {
		seen = append(seen, g.Key.Map()["job"])
		if len(seen) == 1 {
			require.True(t, s.Delete(key("job", "b")), "writes proceed while Range runs")
		}
		return len(seen) < 2
	})
	require.Equal(t, []string{"a", "c"}, seen)
}
