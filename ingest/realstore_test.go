package ingest

import (
	"context"
	"net/http"
	"strings"
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

// TestStoreKeepsNoPushedFamily runs pushes of every kind through the
// ingester into a real store with released parsers and bodies poisoned
// (a body read ahead is released after its push, as the api does), and the same
// pushes, decoded without a pool, straight into a second store. If the
// store (or anything on the way) read a push's families after the push
// returned, the first store would hold poison, or a later push's labels,
// where the second holds the pushed ones.
func TestStoreKeepsNoPushedFamily(t *testing.T) {
	poisonReleased.Store(true)
	t.Cleanup(func() { poisonReleased.Store(false) })
	type push struct {
		method, path, body, contentType string
	}
	var pushes []push
	for name, b := range clientBodies(t) {
		pushes = append(pushes, push{method: http.MethodPut, path: "/job/" + name, body: string(b)})
		pb := encodeDelimited(t, sortedFamilies(parseText(t, string(b)))...)
		pushes = append(pushes, push{http.MethodPut, "/job/" + name + "/format/protobuf", string(pb), string(fmtProtoDelim)})
	}
	pushes = append(pushes,
		push{method: http.MethodPost, path: "/job/node_exporter/instance/a", body: string(readTestdata(t, "node.prom"))},
		push{method: http.MethodPost, path: "/job/merge", body: "# TYPE m gauge\nm{a=\"1\"} 1\n"},
		push{method: http.MethodPost, path: "/job/merge", body: "# TYPE n counter\nn{b=\"2\"} 2\n"},
		push{method: http.MethodPut, path: "/job/dup", body: "m{a=\"1\"} 1\nm{a=\"1\"} 2\n"}, // refused by the store
		push{method: http.MethodPut, path: "/job/clash", body: "# TYPE m counter\nm 1\n"},    // clashes with /job/merge
		push{method: http.MethodPut, path: "/job/last", body: "# HELP z Last.\nz{job=\"overwritten\",instance=\"i\"} 9\n"},
	)
	pooled := newRealStore(t, store.Config{})
	in, _ := newTestIngester(t, Config{}, pooled)
	plain := newRealStore(t, store.Config{})
	// Each push is sent six times in a row: five times read ahead as the
	// api reads it, costed and released after it was applied (the parse,
	// the repeat scan and the protobuf templates point into it), so that
	// the later ones take the repeat path and, in protobuf, the
	// templates; then once as a plain reader. What a store or parser
	// keeps of a push's names, it keeps from a body read ahead first.
	for n := range 6 * len(pushes) {
		i, p := n/6, pushes[n/6]
		req := Request{Method: p.method, Path: p.path, ContentType: p.contentType, Body: strings.NewReader(p.body)}
		var read *Body
		if n%6 < 5 {
			b, err := ReadBody(strings.NewReader(p.body), "", 0, int64(len(p.body)), func(int64) error { return nil })
			require.NoError(t, err)
			DecodeCost(b, p.contentType)
			req.Body, read = b, b
		}
		_, gotErr := in.Handle(context.Background(), req)
		if gotErr == nil && read != nil {
			read.Release() // as the api does: poisoned
		}

		key, err := ParseGroupingPath(p.path)
		require.NoError(t, err)
		fams, err := DecodeBody(strings.NewReader(p.body), p.contentType, "", 0)
		require.NoError(t, err)
		Sanitize(fams, key)
		wantErr := plain.Apply(store.Push{Key: key, Replace: p.method == http.MethodPut, Families: fams, Time: testNow})
		if wantErr != nil {
			require.Error(t, gotErr, "push %d", i)
			require.ErrorContains(t, gotErr, wantErr.Error(), "push %d", i)
		} else {
			require.NoError(t, gotErr, "push %d", i)
		}
	}
	var got, want strings.Builder
	require.NoError(t, pooled.WriteExposition(&got, store.FormatText, nil))
	require.NoError(t, plain.WriteExposition(&want, store.FormatText, nil))
	require.Equal(t, want.String(), got.String())
	require.NotContains(t, got.String(), releasedString)
	require.Greater(t, strings.Count(got.String(), "\n"), 100, "the pushes were stored")
}
