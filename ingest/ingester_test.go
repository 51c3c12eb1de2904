package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

// The real store is what cmd/pushring hands the ingester.
var _ Store = (*store.Store)(nil)

// fakeStore records what the ingester asks of the store. Like any Store
// it keeps no pushed family once Apply returns: it records copies.
type fakeStore struct {
	mu       sync.Mutex
	pushes   []store.Push
	deletes  []store.GroupKey
	applyErr error
}

func (f *fakeStore) Apply(p store.Push) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applyErr != nil {
		return f.applyErr
	}
	fams := make(map[string]*dto.MetricFamily, len(p.Families))
	for name, mf := range p.Families {
		fams[name] = proto.CloneOf(mf)
	}
	p.Families = fams
	f.pushes = append(f.pushes, p)
	return nil
}

func (f *fakeStore) Delete(k store.GroupKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, k)
	return true
}

var testNow = time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)

func newTestIngester(t *testing.T, cfg Config, st Store) (*Ingester, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	in, err := New(cfg, st, func() time.Time { return testNow }, nil, reg)
	require.NoError(t, err)
	return in, reg
}

func TestHandle(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		applyErr   error
		req        Request
		wantStatus int    // from Result or StatusOf
		wantErr    string // "" for success
		wantReason string // rejected_total reason, "" for none
		wantPushes int
		wantDels   int
	}{
		{name: "put", req: Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 200, wantPushes: 1},
		{name: "post", req: Request{Method: http.MethodPost, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 200, wantPushes: 1},
		{name: "put with check disabled", cfg: Config{DisableConsistencyCheck: true},
			req:        Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 202, wantPushes: 1},
		{name: "empty body is an update", req: Request{Method: http.MethodPost, Path: "/job/j", Body: strings.NewReader("")},
			wantStatus: 200, wantPushes: 1},
		{name: "delete", req: Request{Method: http.MethodDelete, Path: "/job/j/a/b"},
			wantStatus: 202, wantDels: 1},
		{name: "delete ignores body", req: Request{Method: http.MethodDelete, Path: "/job/j", Body: strings.NewReader("not{ a body"), ContentEncoding: "gzip"},
			wantStatus: 202, wantDels: 1},
		{name: "delete with check disabled", cfg: Config{DisableConsistencyCheck: true},
			req: Request{Method: http.MethodDelete, Path: "/job/j"}, wantStatus: 202, wantDels: 1},
		{name: "delete of a key no group can have", req: Request{Method: http.MethodDelete, Path: "/job/j/x/%FF"},
			wantStatus: 202},
		{name: "delete bad path", req: Request{Method: http.MethodDelete, Path: "/job/j/a"},
			wantStatus: 400, wantErr: `odd number of components in label string "/a"`, wantReason: reasonPath},
		{name: "delete not found", req: Request{Method: http.MethodDelete, Path: "/job"},
			wantStatus: 404, wantErr: "404 page not found", wantReason: reasonPath},
		{name: "push bad path before bad body", req: Request{Method: http.MethodPut, Path: "/job/j/a", Body: strings.NewReader("m")},
			wantStatus: 400, wantErr: `odd number of components in label string "/a"`, wantReason: reasonPath},
		{name: "push invalid utf8 key", req: Request{Method: http.MethodPut, Path: "/job/j/x/%FF", Body: strings.NewReader("m 1\n")},
			wantStatus: 400, wantErr: `pushed metrics are invalid or inconsistent with existing metrics: grouping label "x" has a value that is not valid UTF-8: "\xff"`, wantReason: reasonPath},
		{name: "push bad body", req: Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m")},
			wantStatus: 400, wantErr: "text format parsing error in line 1: unexpected end of input stream", wantReason: reasonBody},
		{name: "push bad gzip", req: Request{Method: http.MethodPost, Path: "/job/j", Body: strings.NewReader("plain text body"), ContentEncoding: "gzip"},
			wantStatus: 400, wantErr: "gzip: invalid header", wantReason: reasonBody},
		{name: "push too large", cfg: Config{MaxBodyBytes: 4},
			req:        Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("metric 1\n")},
			wantStatus: 413, wantErr: "push body exceeds the limit of 4 bytes; raise --push.max-body-bytes", wantReason: reasonTooLarge},
		{name: "store rejects", applyErr: store.ErrInconsistent,
			req:        Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 400, wantErr: store.ErrInconsistent.Error(), wantReason: reasonInconsistent},
		{name: "store rejects with check disabled", cfg: Config{DisableConsistencyCheck: true}, applyErr: store.ErrInconsistent,
			req:        Request{Method: http.MethodPost, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 400, wantErr: store.ErrInconsistent.Error(), wantReason: reasonInconsistent},
		{name: "store refuses a group", applyErr: &store.LimitError{Limit: store.LimitMaxGroups, Detail: "it would create group 3 but this peer holds at most 2 groups; raise --store.max-groups"},
			req:        Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 429, wantErr: "push refused: it would create group 3 but this peer holds at most 2 groups; raise --store.max-groups", wantReason: reasonMaxGroups},
		{name: "store refuses series", applyErr: &store.LimitError{Limit: store.LimitMaxSeries, Detail: "it would add 1 series to the 9 stored but this peer holds at most 9 series; raise --store.max-series"},
			req:        Request{Method: http.MethodPost, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 429, wantErr: "push refused: it would add 1 series to the 9 stored but this peer holds at most 9 series; raise --store.max-series", wantReason: reasonMaxSeries},
		{name: "store limit naming no flag", applyErr: fmt.Errorf("%w: full", store.ErrLimit),
			req:        Request{Method: http.MethodPost, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 429, wantErr: "push refused: full", wantReason: reasonStoreLimit},
		{name: "bad ttl header before body", req: Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m"), Header: http.Header{"Pushring-Ttl": {"soon"}}},
			wantStatus: 400, wantErr: `invalid Pushring-TTL header "soon": not a duration such as 90s, 5m, 1h30m, 2d or 1w`, wantReason: reasonTTL},
		{name: "delete ignores ttl header", req: Request{Method: http.MethodDelete, Path: "/job/j", Header: http.Header{"Pushring-Ttl": {"soon"}}},
			wantStatus: 202, wantDels: 1},
		{name: "store fails", applyErr: errors.New("disk on fire"),
			req:        Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n")},
			wantStatus: 500, wantErr: "apply push: disk on fire"},
		{name: "get not allowed", req: Request{Method: http.MethodGet, Path: "/job/j"},
			wantStatus: 405, wantErr: `method "GET" not allowed; use PUT, POST or DELETE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStore{applyErr: tt.applyErr}
			in, reg := newTestIngester(t, tt.cfg, st)
			res, err := in.Handle(context.Background(), tt.req)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, tt.wantStatus, res.Status)
			} else {
				require.EqualError(t, err, tt.wantErr)
				require.Equal(t, tt.wantStatus, statusOf(err))
			}
			require.Len(t, st.pushes, tt.wantPushes)
			require.Len(t, st.deletes, tt.wantDels)

			requireRejected(t, reg, tt.wantReason)
		})
	}
}

// The store receives the canonical key, the method's replace mode, the
// clock's time and sanitised families.
func TestHandlePushContent(t *testing.T) {
	text := readTestdata(t, "node.prom")
	body := encodeDelimited(t, sortedFamilies(parseText(t, string(text)))...)
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			st := &fakeStore{}
			in, reg := newTestIngester(t, Config{MaxBodyBytes: DefaultMaxBodyBytes}, st)
			res, err := in.Handle(context.Background(), Request{
				Method:          method,
				Path:            "/job/node/instance@base64/ZWRnZS0wMDQy",
				ContentType:     string(fmtProtoDelim),
				ContentEncoding: "gzip",
				Body:            bytes.NewReader(gzipBytes(t, body)),
			})
			require.NoError(t, err)
			require.Equal(t, 200, res.Status)
			require.Len(t, st.pushes, 1)
			p := st.pushes[0]
			require.Equal(t, store.NewGroupKey(map[string]string{"job": "node", "instance": "edge-0042"}), p.Key)
			require.Equal(t, method == http.MethodPut, p.Replace)
			require.Equal(t, testNow, p.Time)

			want := parseText(t, string(text))
			Sanitize(want, p.Key)
			requireFamiliesEqual(t, want, p.Families)

			h := gatherHistogram(t, reg, "pushring_ingest_body_bytes")
			require.Equal(t, uint64(1), h.GetSampleCount())
			require.Equal(t, float64(len(body)), h.GetSampleSum(), "decompressed size")
		})
	}
}

// requireRejected checks pushring_pushes_rejected_total: every reason is
// exposed, reason (if not "") is 1 and every other is 0.
func requireRejected(t *testing.T, reg *prometheus.Registry, reason string) {
	t.Helper()
	for _, r := range rejectReasons {
		want := 0.0
		if r == reason {
			want = 1
		}
		require.Equal(t, want, counterValue(t, reg, "pushring_pushes_rejected_total", "reason", r), "reason %s", r)
	}
	if reason != "" {
		require.Contains(t, rejectReasons, reason)
	}
}

// counterValue gathers reg and returns the counter with the given label
// pairs (name, value, ...), failing if it is not exposed.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s%v", name, labels)
	return 0
}

func gatherHistogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no family %s", name)
	return nil
}

// A push whose request is already cancelled is not applied.
func TestHandleCancelled(t *testing.T) {
	st := &fakeStore{}
	in, _ := newTestIngester(t, Config{}, st)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := in.Handle(ctx, Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n")})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 500, statusOf(err))
	require.Empty(t, st.pushes)
}

// Concurrent pushes share the pooled decoders safely.
func TestHandleConcurrent(t *testing.T) {
	st := &fakeStore{}
	in, _ := newTestIngester(t, Config{MaxBodyBytes: DefaultMaxBodyBytes}, st)
	text := readTestdata(t, "node.prom")
	gz := gzipBytes(t, text)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				req := Request{Method: http.MethodPost, Path: "/job/j/i/" + strconv.Itoa(i), Body: bytes.NewReader(text)}
				if i%2 == 0 {
					req.Body, req.ContentEncoding = bytes.NewReader(gz), "gzip"
				}
				res, err := in.Handle(context.Background(), req)
				assert.NoError(t, err)
				assert.Equal(t, 200, res.Status)
			}
		})
	}
	wg.Wait()
	require.Len(t, st.pushes, 160)
	want := parseText(t, string(text))
	for _, p := range st.pushes {
		require.Len(t, p.Families, len(want))
	}
}

func TestNew(t *testing.T) {
	_, err := New(Config{MaxBodyBytes: -1}, &fakeStore{}, nil, nil, nil)
	require.ErrorContains(t, err, "push.max-body-bytes")
	_, err = New(Config{}, nil, nil, nil, nil)
	require.Error(t, err)
	in, err := New(Config{}, &fakeStore{}, nil, nil, nil)
	require.NoError(t, err)
	res, err := in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("")})
	require.NoError(t, err)
	require.Equal(t, 200, res.Status)
}
