package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/cputime"
	"github.com/pushring/pushring/store"
)

// benchGroups is the size of the store the groups page is measured on;
// PUSHRING_UI_BENCH_GROUPS sets another.
func benchGroups(b *testing.B) int {
	if v := os.Getenv("PUSHRING_UI_BENCH_GROUPS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		return n
	}
	return 20000
}

// BenchmarkGroupsPage serves the groups page of a real store of 20,000
// groups (100 jobs × 200 instances; a counter of 3 series and a histogram
// each): the first page, the last, a label filter and a text search. Each
// request looks at every group's summary and decodes the page's groups.
// cpu-ns/op (the process's CPU, the garbage collector's included) is less
// sensitive than ns/op to the other work on a shared machine.
func BenchmarkGroupsPage(b *testing.B) {
	st, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(b, err)
	n := benchGroups(b)
	groups := make([]store.GroupSnapshot, 0, n)
	for i := range n {
		job, inst := fmt.Sprintf("job-%03d", i%100), fmt.Sprintf("instance-%05d", i)
		kv := []string{"instance", inst, "job", job}
		c := gaugeFamily("requests_total", "Requests.", 0)
		c.Type = dto.MetricType_COUNTER.Enum()
		c.Metric = nil
		for _, code := range []string{"200", "404", "500"} {
			c.Metric = append(c.Metric, &dto.Metric{Label: labelPairs("code", code, "instance", inst, "job", job), Counter: &dto.Counter{Value: proto.Float64(float64(i))}})
		}
		h := uiHistogramFamily("duration_seconds", kv...)
		groups = append(groups, group(map[string]string{"job": job, "instance": inst}, float64(time.Now().Unix()), 0, c, h))
	}
	require.NoError(b, st.Restore(groups))
	a, err := New(Config{TelemetryPath: "/metrics"}, Deps{Pusher: nil, Ingester: &fakeIngester{}, Store: st, Cluster: newFakeCluster(),
		Admission: NewAdmission(1, 0), Own: prometheus.NewRegistry()}, promslog.NewNopLogger(), prometheus.NewRegistry())
	require.NoError(b, err)
	groups = nil
	for _, bc := range []struct{ name, target, want string }{
		{"first", "/", fmt.Sprintf("Groups 1–50 of %d on this peer.", n)},
		{"last", fmt.Sprintf("/?page=%d", n/50), fmt.Sprintf("Groups %d–%d of %d on this peer.", n-49, n, n)},
		{"match", "/?match=job%3D~%22job-01.%22", fmt.Sprintf("Groups 1–50 of %d matching, of %d", n/10, n)},
		{"text", "/?q=instance-1999", fmt.Sprintf("matching, of %d", n)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			a.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, bc.target, nil))
			require.Equal(b, http.StatusOK, w.Code)
			require.Contains(b, w.Body.String(), bc.want)
			cpu := cputime.Start()
			for b.Loop() {
				a.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, bc.target, nil))
			}
			cpu.PerOp(b)
			b.ReportMetric(float64(w.Body.Len()), "page-bytes")
		})
	}
}
