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

const twoFamilies = `# TYPE a counter
a{x="1"} 1
# HELP b Help of b.
# TYPE b gauge
b 2
`

func TestApplyPutAndPost(t *testing.T) {
	k := key("job", "j")
	cases := []struct {
		name        string
		second      store.Push
		wantNames   []string
		wantATime   time.Time // time stamp of family a after the second push
		wantBPushed bool      // whether b still has the value of the first push
	}{
		{
			name:      "PUT replaces every pushed family",
			second:    textPush(t, k, true, t2, "# TYPE c gauge\nc 3\n"),
			wantNames: []string{"c", store.PushFailureTimeName, store.PushTimeName},
		},
		{
			name:        "POST replaces same-named families only",
			second:      textPush(t, k, false, t2, "# TYPE b gauge\nb 5\n"),
			wantNames:   []string{"a", "b", store.PushFailureTimeName, store.PushTimeName},
			wantATime:   t1,
			wantBPushed: false,
		},
		{
			name:      "PUT with an empty body keeps only the gauges",
			second:    store.Push{Key: k, Replace: true, Families: map[string]*dto.MetricFamily{}, Time: t2},
			wantNames: []string{store.PushFailureTimeName, store.PushTimeName},
		},
		{
			name:        "POST with an empty body changes only push_time_seconds",
			second:      store.Push{Key: k, Families: map[string]*dto.MetricFamily{}, Time: t2},
			wantNames:   []string{"a", "b", store.PushFailureTimeName, store.PushTimeName},
			wantATime:   t1,
			wantBPushed: true,
		},
		{
			name:        "POST with a nil map is an empty update",
			second:      store.Push{Key: k, Time: t2},
			wantNames:   []string{"a", "b", store.PushFailureTimeName, store.PushTimeName},
			wantATime:   t1,
			wantBPushed: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, nil)
			apply(t, s, textPush(t, k, true, t1, twoFamilies))
			apply(t, s, tc.second)
			g := group(t, s, k)
			require.Equal(t, tc.wantNames, familyNames(g))
			require.Equal(t, float64(t2.UnixNano())/1e9, gaugeValue(t, g, store.PushTimeName))
			require.Equal(t, t2, family(g, store.PushTimeName).Time)
			require.Zero(t, gaugeValue(t, g, store.PushFailureTimeName))
			require.Equal(t, t1, family(g, store.PushFailureTimeName).Time, "the failure gauge is written once")
			if a := family(g, "a"); a != nil {
				require.Equal(t, tc.wantATime, a.Time)
			}
			if b := family(g, "b"); b != nil {
				want := 5.0
				if tc.wantBPushed {
					want = 2
				}
				require.Equal(t, want, b.Family.Metric[0].GetGauge().GetValue())
			}
			require.True(t, g.LastPushSuccessful())
		})
	}
}

func TestApplyTimeGauges(t *testing.T) {
	s, _ := newStore(t, nil)
	cases := []struct {
		key        store.GroupKey
		wantLabels []*dto.LabelPair
	}{
		{key("job", "j"), labels("instance", "", "job", "j")},
		{key("job", "j", "instance", "i"), labels("instance", "i", "job", "j")},
		{key("job", "j", "a", "1", "z", "2"), labels("a", "1", "instance", "", "job", "j", "z", "2")},
	}
	for _, tc := range cases {
		apply(t, s, store.Push{Key: tc.key, Replace: true, Families: map[string]*dto.MetricFamily{}, Time: t1})
		g := group(t, s, tc.key)
		for name, help := range map[string]string{
			store.PushTimeName:        "Last Unix time when changing this group in the Pushgateway succeeded.",
			store.PushFailureTimeName: "Last Unix time when changing this group in the Pushgateway failed.",
		} {
			mf := family(g, name).Family
			require.Equal(t, help, mf.GetHelp())
			require.Equal(t, dto.MetricType_GAUGE, mf.GetType())
			require.Len(t, mf.Metric, 1)
			require.True(t, proto.Equal(&dto.Metric{Label: tc.wantLabels}, &dto.Metric{Label: mf.Metric[0].Label}),
				"labels of %s: %v", name, mf.Metric[0].Label)
		}
		require.Equal(t, float64(t1.UnixNano())/1e9, gaugeValue(t, g, store.PushTimeName))
	}
}

func TestApplyPushedTimeGauges(t *testing.T) {
	k := key("job", "j")
	pushedTime := fam(store.PushTimeName, dto.MetricType_GAUGE, nil, gaugeM(42))
	pushedFailure := func() *dto.MetricFamily {
		return fam(store.PushFailureTimeName, dto.MetricType_GAUGE, nil, gaugeM(7, "x", "y"))
	}

	s, _ := newStore(t, nil)
	// A new group ignores both: the zero failure gauge overwrites the pushed one.
	apply(t, s, famPush(k, true, t1, pushedTime, pushedFailure()))
	g := group(t, s, k)
	require.Equal(t, float64(t1.UnixNano())/1e9, gaugeValue(t, g, store.PushTimeName))
	require.Zero(t, gaugeValue(t, g, store.PushFailureTimeName))

	// An existing group takes the pushed failure gauge, extra labels and all
	// (a Pushgateway quirk), and still ignores push_time_seconds.
	apply(t, s, famPush(k, false, t2, pushedTime, pushedFailure()))
	g = group(t, s, k)
	require.Equal(t, float64(t2.UnixNano())/1e9, gaugeValue(t, g, store.PushTimeName))
	require.Equal(t, 7.0, gaugeValue(t, g, store.PushFailureTimeName))
	require.Equal(t, "y", family(g, store.PushFailureTimeName).Family.Metric[0].Label[2].GetValue())
	require.Equal(t, t2, family(g, store.PushFailureTimeName).Time)
}

func TestApplyTypeChangeWithinGroup(t *testing.T) {
	s, _ := newStore(t, nil)
	k := key("job", "j")
	apply(t, s, textPush(t, k, false, t1, "# TYPE m counter\nm 1\n"))
	apply(t, s, textPush(t, k, false, t2, "# TYPE m gauge\nm 1\n"))
	require.Equal(t, dto.MetricType_GAUGE, family(group(t, s, k), "m").Family.GetType())

	// Once another group has m, the type is fixed.
	apply(t, s, textPush(t, key("job", "other"), false, t2, "# TYPE m gauge\nm 1\n"))
	err := s.Apply(textPush(t, k, false, t3, "# TYPE m counter\nm 1\n"))
	require.ErrorIs(t, err, store.ErrInconsistent)
	require.Contains(t, err.Error(), "is not a GAUGE")
	checkInvariants(t, s)
}

func TestApplyVersions(t *testing.T) {
	s, _ := newStore(t, nil)
	a, b := key("job", "a"), key("job", "b")
	apply(t, s, textPush(t, a, true, t1, "# TYPE m gauge\nm 1\n"))
	va := group(t, s, a).Version
	apply(t, s, textPush(t, b, true, t1, "# TYPE n gauge\nn 1\n"))
	vb := group(t, s, b).Version
	require.Greater(t, vb, va)
	require.Equal(t, va, group(t, s, a).Version, "a write to b leaves a's version")
	require.Error(t, s.Apply(textPush(t, a, true, t2, "# TYPE n counter\nn 1\n")))
	require.Greater(t, group(t, s, a).Version, vb, "a recorded failure time is a change too")
}

func TestApplyFailureTime(t *testing.T) {
	s, _ := newStore(t, nil)
	k := key("job", "j")
	bad := "# TYPE m gauge\nm 1 1700000000000\n"

	// A rejected push to a new group creates it with push_time_seconds 0.
	err := s.Apply(textPush(t, k, true, t1, bad))
	require.EqualError(t, err, "pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps")
	require.ErrorIs(t, err, store.ErrInconsistent)
	g := group(t, s, k)
	require.Equal(t, []string{store.PushFailureTimeName, store.PushTimeName}, familyNames(g))
	require.Zero(t, gaugeValue(t, g, store.PushTimeName))
	require.Equal(t, float64(t1.UnixNano())/1e9, gaugeValue(t, g, store.PushFailureTimeName))
	require.False(t, g.LastPushSuccessful())
	require.Equal(t, "timestamp", store.RejectReason(err))

	// A success keeps the failure time; the group is successful again.
	apply(t, s, textPush(t, k, true, t2, "# TYPE m gauge\nm 1\n"))
	g = group(t, s, k)
	require.Equal(t, float64(t1.UnixNano())/1e9, gaugeValue(t, g, store.PushFailureTimeName))
	require.True(t, g.LastPushSuccessful())

	// A rejection of an existing group changes only the failure gauge.
	before := group(t, s, k)
	require.Error(t, s.Apply(textPush(t, k, true, t3, bad)))
	after := group(t, s, k)
	require.Equal(t, float64(t3.UnixNano())/1e9, gaugeValue(t, after, store.PushFailureTimeName))
	require.Equal(t, t3, family(after, store.PushFailureTimeName).Time)
	require.False(t, after.LastPushSuccessful())
	for _, name := range []string{"m", store.PushTimeName} {
		require.True(t, proto.Equal(family(before, name).Family, family(after, name).Family), name)
		require.Equal(t, family(before, name).Time, family(after, name).Time)
	}
	checkInvariants(t, s)
}

func TestRecordFailure(t *testing.T) {
	s, _ := newStore(t, nil)
	k := key("job", "j")
	require.True(t, s.RecordFailure(k, t1))
	g := group(t, s, k)
	require.Zero(t, gaugeValue(t, g, store.PushTimeName))
	require.Equal(t, float64(t1.UnixNano())/1e9, gaugeValue(t, g, store.PushFailureTimeName))
	require.False(t, s.RecordFailure(store.GroupKey{}, t1))
	checkInvariants(t, s)
}

// TestApplyNoPoisoning covers store poisoning: where the Pushgateway creates a
// group whose own gauges clash with another group and then fails every
// scrape and push, pushring rejects the push and does not create the group.
func TestApplyNoPoisoning(t *testing.T) {
	cases := []struct {
		name    string
		first   store.GroupKey
		second  store.GroupKey
		wantErr string
	}{
		{
			name:    "instance=\"\" in the key duplicates the group without it",
			first:   key("job", "ie"),
			second:  key("job", "ie", "instance", ""),
			wantErr: "3 error(s) occurred:",
		},
		{
			name:    "and the other way round",
			first:   key("job", "ie", "instance", ""),
			second:  key("job", "ie"),
			wantErr: "was collected before with the same name and label values",
		},
		{
			name:    "grouping label value that is not UTF-8",
			second:  key("job", "x", "path", "/var/\xf4mp"),
			wantErr: `has a label named "path" whose value is not utf8: "/var/\xf4mp"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, reg := newStore(t, nil)
			body := "# TYPE m gauge\nm 1\n"
			if !tc.first.IsZero() {
				apply(t, s, textPush(t, tc.first, true, t1, body))
			}
			before := scrape(t, s, store.FormatText)
			groups, series := s.Stats()

			err := s.Apply(textPush(t, tc.second, true, t2, body))
			require.ErrorIs(t, err, store.ErrInconsistent)
			require.Contains(t, err.Error(), tc.wantErr)
			_, ok := s.Group(tc.second)
			require.False(t, ok, "the failing group must not be created")
			require.Equal(t, before, scrape(t, s, store.FormatText))
			g2, s2 := s.Stats()
			require.Equal(t, []int{groups, series}, []int{g2, s2})
			require.False(t, s.RecordFailure(tc.second, t3))
			require.Equal(t, 2.0, metricValue(t, reg, "pushring_store_failure_times_unrecorded_total"))
			checkInvariants(t, s)

			// Every other push still works.
			apply(t, s, textPush(t, key("job", "fine"), true, t3, body))
		})
	}
}

func TestApplyInvalidKey(t *testing.T) {
	s, _ := newStore(t, nil)
	err := s.Apply(store.Push{Time: t1})
	require.ErrorIs(t, err, store.ErrInvalidKey)
	require.False(t, errors.Is(err, store.ErrInconsistent))
}

func TestApplyDoesNotModifySortedInput(t *testing.T) {
	s, _ := newStore(t, nil)
	p := textPush(t, key("job", "j"), true, t1, twoFamilies)
	want := proto.Clone(p.Families["a"])
	apply(t, s, p)
	require.True(t, proto.Equal(want, p.Families["a"]))
}

func TestDeleteAndWipe(t *testing.T) {
	s, reg := newStore(t, nil)
	a, b := key("job", "a"), key("job", "b")
	apply(t, s, textPush(t, a, true, t1, twoFamilies))
	apply(t, s, textPush(t, b, true, t1, twoFamilies))
	groups, series := s.Stats()
	require.Equal(t, []int{2, 8}, []int{groups, series})
	require.Equal(t, 8.0, metricValue(t, reg, "pushring_store_series"))

	require.True(t, s.Delete(a))
	require.False(t, s.Delete(a))
	checkInvariants(t, s)
	groups, series = s.Stats()
	require.Equal(t, []int{1, 4}, []int{groups, series})
	require.Equal(t, 1.0, metricValue(t, reg, "pushring_store_groups"))

	// The deleted group's series are free again.
	apply(t, s, textPush(t, a, true, t2, twoFamilies))
	require.Equal(t, 2, s.Wipe())
	require.Equal(t, 0, s.Wipe())
	groups, series = s.Stats()
	require.Equal(t, []int{0, 0}, []int{groups, series})
	require.Empty(t, scrape(t, s, store.FormatText))
	checkInvariants(t, s)
}

func TestChanged(t *testing.T) {
	s, _ := newStore(t, nil)
	ch := s.Changed()
	require.Len(t, ch, 0)
	apply(t, s, textPush(t, key("job", "a"), true, t1, twoFamilies))
	apply(t, s, textPush(t, key("job", "b"), true, t1, twoFamilies))
	require.Len(t, ch, 1, "the signal does not block and does not pile up")
	<-ch
	require.False(t, s.Delete(key("job", "zzz")))
	require.Len(t, ch, 0, "no change, no signal")
	require.True(t, s.Delete(key("job", "a")))
	require.Len(t, ch, 1)
	require.Equal(t, ch, s.Changed())
}
