package cluster

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// handedGroup is a group of key k holding one gauge series with labels.
func handedGroup(t *testing.T, k store.GroupKey, version uint64, name string, labels ...string) *peerpb.Group {
	t.Helper()
	m := &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(1)}}
	for i := 0; i < len(labels); i += 2 {
		m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(labels[i]), Value: proto.String(labels[i+1])})
	}
	b, err := proto.Marshal(&dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{m}})
	require.NoError(t, err)
	return &peerpb.Group{Key: []byte(k.String()), Version: version, Families: []*peerpb.Family{{Name: name, MetricFamily: b}}}
}

func TestReceiveChecks(t *testing.T) {
	limits := ReceiveLimits{MaxLabelsPerSeries: 4, MaxLabelNameLength: 16, MaxLabelValueLength: 16, MaxMetricNameLength: 16}
	cfg := testConfig()
	cfg.Received = limits
	c, _ := lonePeer(t, &fakeIngester{}, freeAdmission{}, cfg)
	k := store.NewGroupKey(map[string]string{"job": "j", "instance": "i"})
	now := uint64(time.Now().UnixNano())
	for _, tc := range []struct {
		name   string
		g      *peerpb.Group
		reason string
	}{
		{"version near 2^64", handedGroup(t, k, math.MaxUint64, "m", "job", "j", "instance", "i"), reasonVersionAhead},
		{"version an hour ahead", handedGroup(t, k, now+uint64(time.Hour), "m", "job", "j", "instance", "i"), reasonVersionAhead},
		{"tombstone near 2^64", &peerpb.Group{Key: []byte(k.String()), Version: math.MaxUint64, Deleted: true}, reasonVersionAhead},
		{"no job label", handedGroup(t, k, now, "m", "instance", "i"), reasonForeignLabels},
		{"another job", handedGroup(t, k, now, "m", "job", "other", "instance", "i"), reasonForeignLabels},
		{"no instance", handedGroup(t, k, now, "m", "job", "j"), reasonForeignLabels},
		{"no job in the key", handedGroup(t, store.NewGroupKey(map[string]string{"instance": "i"}), now, "m", "instance", "i"), reasonForeignLabels},
		{"empty label name", handedGroup(t, k, now, "m", "job", "j", "instance", "i", "", "v"), reasonInvalidName},
		{"label value not UTF-8", handedGroup(t, k, now, "m", "job", "j", "instance", "i", "l", "\xff"), reasonInvalidName},
		{"long metric name", handedGroup(t, k, now, strings.Repeat("m", 17), "job", "j", "instance", "i"), reasonOverLimit},
		{"long label value", handedGroup(t, k, now, "m", "job", "j", "instance", "i", "l", strings.Repeat("v", 17)), reasonOverLimit},
		{"too many labels", handedGroup(t, k, now, "m", "job", "j", "instance", "i", "a", "1", "b", "2", "c", "3"), reasonOverLimit},
		{"undecodable", &peerpb.Group{Key: []byte("not a key")}, reasonUndecodable},
	} {
		before := testutil.ToFloat64(c.checks.rejected.WithLabelValues(tc.reason))
		_, err := c.checkReceived(tc.g)
		require.Error(t, err, tc.name)
		require.Equal(t, before+1, testutil.ToFloat64(c.checks.rejected.WithLabelValues(tc.reason)), "%s: counted under %s (%v)", tc.name, tc.reason, err)
	}
	for _, g := range []*peerpb.Group{
		handedGroup(t, k, now, "m", "job", "j", "instance", "i", "l", "v"),
		handedGroup(t, k, now+uint64(time.Second), "m", "job", "j", "instance", "i"),
		handedGroup(t, store.NewGroupKey(map[string]string{"job": "j"}), now, "m", "job", "j", "instance", "own"),
		{Key: []byte(k.String()), Version: now, Deleted: true},
	} {
		_, err := c.checkReceived(g)
		require.NoError(t, err)
	}
}

// TestHandOffRefusesForgeries: a forged tombstone with a wild version
// deletes nothing, a forged group with foreign labels replaces nothing,
// and neither moves the store's version counter.
func TestHandOffRefusesForgeries(t *testing.T) {
	c, st := lonePeer(t, &fakeIngester{}, freeAdmission{}, testConfig())
	svc := &server{c: c}
	src, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	k := store.NewGroupKey(map[string]string{"job": "real"})
	require.NoError(t, src.Apply(store.Push{Key: k}))
	gs, _ := src.Group(k)
	real, err := groupToPB(gs)
	require.NoError(t, err)
	resp, err := svc.HandOff(context.Background(), &peerpb.HandOffRequest{Groups: []*peerpb.Group{real}})
	require.NoError(t, err)
	require.Equal(t, uint32(1), resp.GetAccepted(), "a real hand-off passes: %v", resp.GetRejected())

	resp, err = svc.HandOff(context.Background(), &peerpb.HandOffRequest{Groups: []*peerpb.Group{
		{Key: []byte(k.String()), Version: math.MaxUint64, Deleted: true},
		handedGroup(t, k, gs.Version+1, "injected", "instance", "x"),
	}})
	require.NoError(t, err)
	require.Zero(t, resp.GetAccepted())
	require.Len(t, resp.GetRejected(), 2)
	got, ok := st.Group(k)
	require.True(t, ok, "the forged tombstone deleted nothing")
	require.Equal(t, gs.Version, got.Version, "the forged group replaced nothing")
	require.Empty(t, st.Tombstones())
	require.Equal(t, 1.0, testutil.ToFloat64(c.checks.rejected.WithLabelValues(reasonVersionAhead)))
	require.Equal(t, 1.0, testutil.ToFloat64(c.checks.rejected.WithLabelValues(reasonForeignLabels)))
}
