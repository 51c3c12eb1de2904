package api

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fakeIngester records what the API hands it and answers as told.
type fakeIngester struct {
	mu     sync.Mutex
	reqs   []recordedRequest
	result ingest.Result
	err    error

	// entered, when set, receives once per Handle call before it blocks.
	entered chan struct{}
	// release, when set, blocks Handle until it is closed (or the request
	// context ends).
	release chan struct{}

	overloaded atomic.Int64 // CountOverloaded calls
	refused    []string     // CountRefused reasons, under mu
	reloads    atomic.Int64 // ReloadRules calls
	reloadErr  error
}

func (f *fakeIngester) CountOverloaded() { f.overloaded.Add(1) }

func (f *fakeIngester) CountRefused(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused = append(f.refused, reason)
}

func (f *fakeIngester) refusedReasons() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refused...)
}

func (f *fakeIngester) TTLRules() []ingest.TTLRule {
	return []ingest.TTLRule{{Job: "batch-.*", Labels: []ingest.RuleLabel{{Name: "instance", Regex: "<edge>.*"}}, TTL: 10 * time.Minute}}
}

func (f *fakeIngester) ReloadRules() error {
	f.reloads.Add(1)
	return f.reloadErr
}

type recordedRequest struct {
	ingest.Request
	body string
}

func (f *fakeIngester) Handle(ctx context.Context, r ingest.Request) (ingest.Result, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return ingest.Result{}, ctx.Err()
		}
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return ingest.Result{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, recordedRequest{Request: r, body: string(b)})
	return f.result, f.err
}

func (f *fakeIngester) last(t *testing.T) recordedRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.reqs, "the ingester was not called")
	return f.reqs[len(f.reqs)-1]
}

// fakeStore serves fixed snapshots and writes a recognisable exposition.
type fakeStore struct {
	mu      sync.Mutex
	groups  []store.GroupSnapshot
	wiped   int
	format  store.Format
	extra   []string // names of the extra families of the last scrape
	failErr error    // returned by WriteExposition after failAfter bytes
	failAt  int
}

func (f *fakeStore) WriteExposition(w io.Writer, format store.Format, extra []*dto.MetricFamily) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.format = format
	f.extra = f.extra[:0]
	for _, mf := range extra {
		f.extra = append(f.extra, mf.GetName())
	}
	body := fmt.Sprintf("exposition format=%d groups=%d\n", format, len(f.groups)) + strings.Repeat("x", 4096) + "\n"
	if f.failErr != nil {
		_, _ = io.WriteString(w, body[:f.failAt])
		return f.failErr
	}
	_, err := io.WriteString(w, body)
	return err
}

func (f *fakeStore) WriteExpositionGzip(w io.Writer, format store.Format, extra []*dto.MetricFamily) error {
	// Like the store, nothing reaches w when it fails before writing.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	err := f.WriteExposition(zw, format, extra)
	if err == nil {
		err = zw.Close()
	} else if f.failAt > 0 {
		_ = zw.Flush()
	}
	if buf.Len() > 0 && (err == nil || f.failAt > 0) {
		if _, werr := w.Write(buf.Bytes()); werr != nil {
			return werr
		}
	}
	return err
}

func (f *fakeStore) Snapshot() []store.GroupSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.GroupSnapshot(nil), f.groups...)
}

func (f *fakeStore) Range(fn func(store.GroupSnapshot) bool) {
	for _, g := range f.Snapshot() {
		if !fn(g) {
			return
		}
	}
}

// RangeSummaries visits the groups ordered by job, then key, as the
// store does.
func (f *fakeStore) RangeSummaries(fn func(store.GroupSummary) bool) {
	gs := f.Snapshot()
	slices.SortStableFunc(gs, func(x, y store.GroupSnapshot) int {
		xj, _ := x.Key.Get("job")
		yj, _ := y.Key.Get("job")
		return cmp.Or(strings.Compare(xj, yj), strings.Compare(x.Key.String(), y.Key.String()))
	})
	for _, g := range gs {
		if !fn(store.SummaryOf(g)) {
			return
		}
	}
}

func (f *fakeStore) Group(k store.GroupKey) (store.GroupSnapshot, bool) {
	for _, g := range f.Snapshot() {
		if g.Key == k {
			return g, true
		}
	}
	return store.GroupSnapshot{}, false
}

func (f *fakeStore) Wipe() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.groups)
	f.groups = nil
	f.wiped++
	return n
}

// fakeCluster is a cluster as told: by default a ready peer on its own.
type fakeCluster struct {
	mu         sync.Mutex
	ready      error
	status     ClusterStatus
	groups     ClusterGroups
	byPeer     []PeerGroups
	wipeGroups int
	wipeFailed []string
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{status: ClusterStatus{Self: "peer-0", Settled: true, Peers: []PeerStatus{
		{ID: "peer-0", State: "alive", Self: true, HTTPAddr: ":9091"},
	}}}
}

func (f *fakeCluster) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeCluster) setReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = err
}

func (f *fakeCluster) Status(context.Context, bool) ClusterStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeCluster) Groups(context.Context) ClusterGroups {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.groups
}

// Locate names peer-0 the owner of every group.
func (f *fakeCluster) Locate(store.GroupKey) GroupLocation {
	return GroupLocation{Owner: "peer-0", OwnerHTTPAddr: ":9091"}
}

func (f *fakeCluster) GroupsByPeer(context.Context) []PeerGroups {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byPeer
}

func (f *fakeCluster) WipeOthers(context.Context) (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wipeGroups, f.wipeFailed
}

// testAPI bundles an API with its fakes and registries.
type testAPI struct {
	*API
	ing *fakeIngester
	st  *fakeStore
	cl  *fakeCluster
	reg *prometheus.Registry // HTTP self-metrics
	own *prometheus.Registry // gathered for /metrics
}

// newTestAPI builds an API with fakes; zero telemetry path and admission
// fields take the flags' defaults.
func newTestAPI(t *testing.T, cfg Config) *testAPI {
	t.Helper()
	if cfg.TelemetryPath == "" {
		cfg.TelemetryPath = defaultTelemetryPath
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.MaxQueueWait == 0 {
		cfg.MaxQueueWait = DefaultMaxQueueWait
	}
	return newTestAPIExact(t, cfg)
}

// newTestAPIExact builds an API with fakes and cfg as given.
func newTestAPIExact(t *testing.T, cfg Config) *testAPI {
	t.Helper()
	ta := &testAPI{
		ing: &fakeIngester{result: ingest.Result{Status: http.StatusOK}},
		st:  &fakeStore{},
		cl:  newFakeCluster(),
		reg: prometheus.NewRegistry(),
		own: prometheus.NewRegistry(),
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pushring_test_own", Help: "An own metric."})
	ta.own.MustRegister(g)
	a, err := New(cfg, Deps{
		Pusher: ta.ing, Ingester: ta.ing, Store: ta.st, Cluster: ta.cl,
		Admission: NewAdmission(cfg.MaxInflight, cfg.MaxQueueWait), Budget: NewBudget(cfg, ta.ing), Own: ta.own,
	}, promslog.NewNopLogger(), ta.reg)
	require.NoError(t, err)
	ta.API = a
	return ta
}

// do serves one request and returns the recorded response.
func (ta *testAPI) do(method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	ta.Handler().ServeHTTP(w, r)
	return w
}

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(p, got, 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test -update to create %s", p)
	require.Equal(t, string(want), string(got))
}

// Builders of families and groups for the JSON and UI tests.

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)

func labelPairs(kv ...string) []*dto.LabelPair {
	var ls []*dto.LabelPair
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, &dto.LabelPair{Name: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return ls
}

func gaugeFamily(name, help string, v float64, kv ...string) *dto.MetricFamily {
	mf := &dto.MetricFamily{
		Name:   proto.String(name),
		Type:   dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Label: labelPairs(kv...), Gauge: &dto.Gauge{Value: proto.Float64(v)}}},
	}
	if help != "" {
		mf.Help = proto.String(help)
	}
	return mf
}

// group builds a snapshot with the two push-time gauges the store keeps.
func group(labels map[string]string, pushTime, failTime float64, fams ...*dto.MetricFamily) store.GroupSnapshot {
	key := store.NewGroupKey(labels)
	var kv []string
	for _, l := range key.Labels() {
		kv = append(kv, l.Name, l.Value)
	}
	if _, ok := labels["instance"]; !ok {
		kv = append([]string{"instance", ""}, kv...)
	}
	all := append([]*dto.MetricFamily{
		gaugeFamily(store.PushFailureTimeName, "Last Unix time when changing this group in the Pushgateway failed.", failTime, kv...),
		gaugeFamily(store.PushTimeName, "Last Unix time when changing this group in the Pushgateway succeeded.", pushTime, kv...),
	}, fams...)
	g := store.GroupSnapshot{Key: key, Version: 1}
	for _, mf := range all {
		g.Families = append(g.Families, store.FamilySnapshot{Family: mf, Time: testTime})
	}
	return g
}

var errTest = errors.New("test failure")
