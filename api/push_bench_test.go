package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/ingest"
)

// bodyDrainer is a Pusher that reads the body and answers 200, so
// BenchmarkPushHandler measures the api's own share of a push.
type bodyDrainer struct{}

func (bodyDrainer) Handle(_ context.Context, r ingest.Request) (ingest.Result, error) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return ingest.Result{}, err
	}
	return ingest.Result{Status: http.StatusOK}, nil
}

// deadlineRecorder takes read deadlines, as the server's ResponseWriter
// does, so that the benchmark does not count the recorder's refusals.
type deadlineRecorder struct{ *httptest.ResponseRecorder }

func (deadlineRecorder) SetReadDeadline(time.Time) error { return nil }

// BenchmarkPushHandler serves a 40-series text PUT through the whole
// handler (self-metrics, routing, body reading under its deadline and
// budget, admission) to a Pusher that only drains the body.
func BenchmarkPushHandler(b *testing.B) {
	cfg := Config{TelemetryPath: defaultTelemetryPath, MaxInflight: DefaultMaxInflight, MaxQueueWait: DefaultMaxQueueWait}
	ing := &fakeIngester{}
	a, err := New(cfg, Deps{
		Pusher: bodyDrainer{}, Ingester: ing, Store: &fakeStore{}, Cluster: newFakeCluster(),
		Admission: NewAdmission(cfg.MaxInflight, cfg.MaxQueueWait), Budget: NewBudget(cfg, ing), Own: prometheus.NewRegistry(),
	}, promslog.NewNopLogger(), prometheus.NewRegistry())
	require.NoError(b, err)
	var body strings.Builder
	for i := range 40 {
		fmt.Fprintf(&body, "edge_network_receive_bytes_total{device=\"eth%d\"} %d\n", i, 1000+i)
	}
	text := body.String()
	h := a.Handler()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPut, "/metrics/job/bench/instance/edge-000001", strings.NewReader(text))
		r.Header.Set("Content-Type", "text/plain; version=0.0.4")
		w := deadlineRecorder{httptest.NewRecorder()}
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkRequestMetrics counts one push request in the self-metrics as
// instrument and push do, through the vectors and through the cache of
// their children, with every core counting at once.
func BenchmarkRequestMetrics(b *testing.B) {
	m := newMetrics(prometheus.NewRegistry(), NewAdmission(1, time.Second), &bodyReader{budget: newBudget(0)})
	names := map[string]string{"PUT /metrics/job/{rest...}": "push"}
	b.Run("vectors", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				name := names["PUT /metrics/job/{rest...}"]
				m.requests.WithLabelValues(name, "200", "put").Inc()
				m.duration.WithLabelValues(name, "200", "put").Observe(0.001)
				m.pushes.WithLabelValues("put", "200").Inc()
			}
		})
	})
	b.Run("cached", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c := m.request(names, "PUT /metrics/job/{rest...}", "200", "put")
				c.requests.Inc()
				c.duration.Observe(0.001)
				m.push("put", "200").Inc()
			}
		})
	})
}
