package ingest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// groupState is what a rejected push must not change about a group.
type groupState struct {
	version  uint64
	deadline time.Time
}

func groupStates(st *store.Store) map[string]groupState {
	m := map[string]groupState{}
	for _, g := range st.Snapshot() {
		m[g.Key.String()] = groupState{g.Version, g.Deadline}
	}
	return m
}

func newRealStore(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.New(cfg, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return st
}

// The store's limits come back as 429 with the store's message, counted
// under max_groups or max_series; this pins the flag names
// storeLimitReason looks for in the real store's messages. Neither they
// nor the ingester's own limits change any stored group.
func TestStoreLimitReason(t *testing.T) {
	tests := []struct {
		name       string
		cfg        store.Config
		req        Request
		wantReason string
		wantFlag   string
	}{
		{"max groups", store.Config{MaxGroups: 1}, put("/job/second", "m 1\n"), reasonMaxGroups, "--store.max-groups"},
		{"max series", store.Config{MaxSeries: 5}, put("/job/first/instance/x", seriesBody(6)), reasonMaxSeries, "--store.max-series"},
		{"max bytes", store.Config{MaxBytes: 400}, put("/job/first/instance/x", seriesBody(6)), reasonMaxBytes, "--store.max-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newRealStore(t, tt.cfg)
			in, reg := newTestIngester(t, Config{MaxSeries: 8, TTL: time.Minute}, st)
			_, err := in.Handle(context.Background(), put("/job/first", "m 1\n"))
			require.NoError(t, err)
			before := groupStates(st)
			first := store.NewGroupKey(map[string]string{"job": "first"}).String()
			require.Equal(t, testNow.Add(time.Minute), before[first].deadline, "--push.ttl reaches the store")

			_, err = in.Handle(context.Background(), tt.req)
			require.Equal(t, http.StatusTooManyRequests, statusOf(err))
			require.ErrorIs(t, err, store.ErrLimit)
			require.ErrorContains(t, err, tt.wantFlag)
			requireRejected(t, reg, tt.wantReason)
			require.Equal(t, before, groupStates(st))
		})
	}
	t.Run("ingest limit", func(t *testing.T) {
		st := newRealStore(t, store.Config{})
		in, reg := newTestIngester(t, Config{MaxSeries: 8}, st)
		_, err := in.Handle(context.Background(), put("/job/first", "m 1\n"))
		require.NoError(t, err)
		before := groupStates(st)
		_, err = in.Handle(context.Background(), put("/job/first", seriesBody(9)))
		require.Equal(t, http.StatusRequestEntityTooLarge, statusOf(err))
		requireRejected(t, reg, reasonSeriesPerPush)
		require.Equal(t, before, groupStates(st), "not even the failure time may change")
	})
}

// A push the store refuses is counted once, in pushring_pushes_rejected_total,
// under the store's reason: a timestamp has its own, as has a push that is
// broken on its own.
func TestStoreRejectionReason(t *testing.T) {
	tests := []struct{ name, body, wantReason string }{
		{"timestamp", "m 1 1700000000000\n", reasonTimestamp},
		{"conflicts with a stored group", "# TYPE m counter\nm 1\n", reasonInconsistent},
		{"broken on its own", "m 1\nm 2\n", reasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newRealStore(t, store.Config{})
			in, reg := newTestIngester(t, Config{}, st)
			_, err := in.Handle(context.Background(), put("/job/first", "# TYPE m gauge\nm 1\n"))
			require.NoError(t, err)

			_, err = in.Handle(context.Background(), put("/job/second", tt.body))
			require.Equal(t, http.StatusBadRequest, statusOf(err))
			requireRejected(t, reg, tt.wantReason)
		})
	}
}
