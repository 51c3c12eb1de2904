package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

func TestRoutesWithoutPrefix(t *testing.T) {
	ta := newTestAPI(t, Config{EnablePprof: true})
	cases := []struct {
		name, method, target string
		code                 int
	}{
		{"scrape", http.MethodGet, "/metrics", http.StatusOK},
		{"healthy", http.MethodGet, "/-/healthy", http.StatusOK},
		{"ready", http.MethodGet, "/-/ready", http.StatusOK},
		{"ui root", http.MethodGet, "/", http.StatusOK},
		{"ui status", http.MethodGet, "/status", http.StatusOK},
		{"api status", http.MethodGet, "/api/v1/status", http.StatusOK},
		{"api metrics", http.MethodGet, "/api/v1/metrics", http.StatusOK},
		{"api root", http.MethodGet, "/api/v1/", http.StatusNotFound},
		{"api unknown", http.MethodGet, "/api/v1/nope", http.StatusNotFound},
		{"api redirect", http.MethodGet, "/api/v1", http.StatusTemporaryRedirect},
		{"push", http.MethodPut, "/metrics/job/a", http.StatusOK},
		{"push base64", http.MethodPost, "/metrics/job@base64/YQ", http.StatusOK},
		{"no job", http.MethodPut, "/metrics/job", http.StatusNotFound},
		{"no base64 job", http.MethodPost, "/metrics/job@base64", http.StatusNotFound},
		{"reload without lifecycle", http.MethodPost, "/-/reload", http.StatusForbidden},
		{"reload get", http.MethodGet, "/-/reload", http.StatusMethodNotAllowed},
		{"unknown", http.MethodGet, "/nope", http.StatusNotFound},
		{"static", http.MethodGet, "/static/x.js", http.StatusNotFound},
		{"pprof index", http.MethodGet, "/debug/pprof/", http.StatusOK},
		{"pprof cmdline", http.MethodGet, "/debug/pprof/cmdline", http.StatusOK},
		{"pprof named", http.MethodGet, "/debug/pprof/goroutine?debug=1", http.StatusOK},
		{"pprof unknown", http.MethodGet, "/debug/pprof/nope", http.StatusNotFound},
		{"pprof symbol", http.MethodPost, "/debug/pprof/symbol", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := ta.do(c.method, c.target, strings.NewReader(""))
			require.Equal(t, c.code, w.Code, w.Body.String())
		})
	}
}

// pprof is off unless --web.enable-pprof asks for it.
func TestPprofOffByDefault(t *testing.T) {
	ta := newTestAPI(t, Config{})
	for _, target := range []string{"/debug/pprof/", "/debug/pprof/trace", "/debug/pprof/profile", "/debug/pprof/goroutine?debug=1"} {
		require.Equal(t, http.StatusNotFound, ta.do(http.MethodGet, target, nil).Code, target)
	}
	require.Equal(t, http.StatusNotFound, ta.do(http.MethodPost, "/debug/pprof/symbol", nil).Code)
}

func TestRoutesUnderPrefix(t *testing.T) {
	ta := newTestAPI(t, Config{RoutePrefix: "/pg/", EnablePprof: true})
	require.Equal(t, "/pg", ta.prefix)

	w := ta.do(http.MethodGet, "/pg", nil)
	require.Equal(t, http.StatusMovedPermanently, w.Code)
	require.Equal(t, "/pg/", w.Header().Get("Location"))

	for _, target := range []string{"/pg/", "/pg/status", "/pg/metrics", "/pg/-/healthy", "/pg/-/ready",
		"/pg/api/v1/status", "/pg/api/v1/metrics", "/pg/debug/pprof/", "/pg/debug/pprof/goroutine?debug=1"} {
		require.Equal(t, http.StatusOK, ta.do(http.MethodGet, target, nil).Code, target)
	}
	for _, target := range []string{"/", "/status", "/metrics", "/-/healthy", "/-/ready", "/api/v1/status", "/-/quit", "/debug/pprof/"} {
		require.Equal(t, http.StatusNotFound, ta.do(http.MethodGet, target, nil).Code, target)
	}
	require.Equal(t, http.StatusNotFound, ta.do(http.MethodPut, "/metrics/job/a", nil).Code)

	w = ta.do(http.MethodPut, "/pg/metrics/job/a/b/c", strings.NewReader("m 1\n"))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "/job/a/b/c", ta.ing.last(t).Path)

	// GET /-/quit is registered under the prefix (the Pushgateway's
	// unprefixed registration is a bug).
	w = ta.do(http.MethodGet, "/pg/-/quit", nil)
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	require.Equal(t, "Only POST or PUT requests allowed.", w.Body.String())
}

func TestTelemetryPath(t *testing.T) {
	ta := newTestAPI(t, Config{RoutePrefix: "/pg", TelemetryPath: "/own/metrics"})
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/pg/own/metrics", nil).Code)
	require.Equal(t, http.StatusNotFound, ta.do(http.MethodGet, "/pg/metrics", nil).Code)
}

func TestConflictingTelemetryPathIsAnError(t *testing.T) {
	ta := newTestAPI(t, Config{})
	_, err := New(Config{TelemetryPath: "/-/healthy", MaxInflight: 1}, Deps{Pusher: ta.ing, Ingester: ta.ing, Store: ta.st, Cluster: ta.cl, Admission: NewAdmission(1, 0), Budget: NewBudget(Config{}, ta.ing), Own: ta.own}, ta.logger, prometheus.NewRegistry())
	require.ErrorContains(t, err, "web.telemetry-path")
}

func TestMethodNotAllowed(t *testing.T) {
	ta := newTestAPI(t, Config{})
	cases := []struct {
		method, target, allow string
	}{
		{http.MethodGet, "/metrics/job/x", "DELETE, OPTIONS, POST, PUT"},
		{http.MethodPost, "/-/healthy", "GET, HEAD, OPTIONS"},
		{http.MethodDelete, "/-/quit", "GET, HEAD, OPTIONS, POST, PUT"},
		{http.MethodDelete, "/-/reload", "GET, HEAD, OPTIONS, POST, PUT"},
		{http.MethodPost, "/api/v1/status", "GET, OPTIONS"},
		{http.MethodPut, "/api/v1/metrics", "GET, OPTIONS"},
		// No automatic HEAD, as with the Pushgateway's router.
		{http.MethodHead, "/-/healthy", "GET, OPTIONS"},
		{http.MethodHead, "/metrics", "GET, OPTIONS"},
		{http.MethodHead, "/api/v1/status", "GET, OPTIONS"},
		{http.MethodHead, "/-/quit", "GET, OPTIONS, POST, PUT"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			w := ta.do(c.method, c.target, nil)
			require.Equal(t, http.StatusMethodNotAllowed, w.Code)
			require.Equal(t, c.allow, w.Header().Get("Allow"))
		})
	}
}

func TestOptions(t *testing.T) {
	ta := newTestAPI(t, Config{EnablePprof: true})

	w := ta.do(http.MethodOptions, "/metrics/job/x", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "DELETE, OPTIONS, POST, PUT", w.Header().Get("Allow"))
	require.Empty(t, w.Body.String())

	w = ta.do(http.MethodOptions, "/-/healthy", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "GET, OPTIONS", w.Header().Get("Allow"))

	w = ta.do(http.MethodOptions, "/debug/pprof/symbol", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "GET, OPTIONS, POST", w.Header().Get("Allow"))

	for _, target := range []string{"/api/v1/status", "/api/v1/anything/at/all", "/api/v1/admin/wipe"} {
		w = ta.do(http.MethodOptions, target, nil)
		require.Equal(t, http.StatusOK, w.Code, target)
		require.Empty(t, w.Body.String())
		requireCORS(t, w.Header())
	}

	require.Equal(t, http.StatusNotFound, ta.do(http.MethodOptions, "/nope", nil).Code)
}

func TestHealth(t *testing.T) {
	ta := newTestAPI(t, Config{})
	for _, target := range []string{"/-/healthy", "/-/ready"} {
		// A request Content-Encoding is ignored off the push routes (the
		// Pushgateway answers 400 EOF here).
		w := ta.do(http.MethodGet, target, nil, "Content-Encoding", "gzip")
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, "OK", w.Body.String())
		require.Equal(t, "text/plain; charset=utf-8", w.Header().Get("Content-Type"))
	}
}

func TestQuit(t *testing.T) {
	t.Run("enabled", func(t *testing.T) {
		ta := newTestAPI(t, Config{EnableLifecycle: true})
		select {
		case <-ta.Quit():
			t.Fatal("quit closed before any request")
		default:
		}
		for _, m := range []string{http.MethodPut, http.MethodPost} {
			w := ta.do(m, "/-/quit", nil)
			require.Equal(t, http.StatusOK, w.Code)
			require.Equal(t, "Requesting termination... Goodbye!", w.Body.String())
		}
		select {
		case <-ta.Quit():
		default:
			t.Fatal("quit not closed")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		ta := newTestAPI(t, Config{})
		for _, m := range []string{http.MethodPut, http.MethodPost} {
			w := ta.do(m, "/-/quit", nil)
			require.Equal(t, http.StatusForbidden, w.Code)
			require.Equal(t, "Lifecycle API is not enabled.", w.Body.String())
		}
		select {
		case <-ta.Quit():
			t.Fatal("quit closed with the lifecycle API disabled")
		default:
		}
	})
	t.Run("get", func(t *testing.T) {
		ta := newTestAPI(t, Config{EnableLifecycle: true})
		w := ta.do(http.MethodGet, "/-/quit", nil)
		require.Equal(t, http.StatusMethodNotAllowed, w.Code)
		require.Equal(t, "Only POST or PUT requests allowed.", w.Body.String())
	})
}

func TestReload(t *testing.T) {
	t.Run("enabled", func(t *testing.T) {
		ta := newTestAPI(t, Config{EnableLifecycle: true, RoutePrefix: "/pg"})
		for i, m := range []string{http.MethodPut, http.MethodPost} {
			w := ta.do(m, "/pg/-/reload", nil)
			require.Equal(t, http.StatusOK, w.Code, m)
			require.Empty(t, w.Body.String())
			require.EqualValues(t, i+1, ta.ing.reloads.Load())
		}
	})
	t.Run("broken rules", func(t *testing.T) {
		ta := newTestAPI(t, Config{EnableLifecycle: true})
		ta.ing.reloadErr = errors.New(`reload TTL rules: load --push.ttl-rules-file="/etc/rules.yml": line 3: unknown field "jobb" in a rule (a rule has job, labels and ttl)`)
		w := ta.do(http.MethodPost, "/-/reload", nil)
		require.Equal(t, http.StatusInternalServerError, w.Code)
		require.Equal(t, ta.ing.reloadErr.Error(), w.Body.String(), "the body says what is wrong with the file")
		require.EqualValues(t, 1, ta.ing.reloads.Load())
	})
	t.Run("disabled", func(t *testing.T) {
		ta := newTestAPI(t, Config{})
		for _, m := range []string{http.MethodPut, http.MethodPost} {
			w := ta.do(m, "/-/reload", nil)
			require.Equal(t, http.StatusForbidden, w.Code)
			require.Equal(t, "Lifecycle API is not enabled.", w.Body.String())
		}
		require.Zero(t, ta.ing.reloads.Load(), "no reload without --web.enable-lifecycle")
	})
	t.Run("get", func(t *testing.T) {
		ta := newTestAPI(t, Config{EnableLifecycle: true})
		w := ta.do(http.MethodGet, "/-/reload", nil)
		require.Equal(t, http.StatusMethodNotAllowed, w.Code)
		require.Equal(t, "Only POST or PUT requests allowed.", w.Body.String())
		require.Zero(t, ta.ing.reloads.Load())
	})
}

func TestWipe(t *testing.T) {
	t.Run("disabled", func(t *testing.T) {
		ta := newTestAPI(t, Config{})
		ta.st.groups = append(ta.st.groups, group(map[string]string{"job": "a"}, 1, 0))
		for _, m := range []string{http.MethodPut, http.MethodGet, http.MethodPost} {
			require.Equal(t, http.StatusNotFound, ta.do(m, "/api/v1/admin/wipe", nil).Code, m)
		}
		require.Zero(t, ta.st.wiped)
	})
	t.Run("enabled", func(t *testing.T) {
		ta := newTestAPI(t, Config{EnableAdminAPI: true, RoutePrefix: "/pg"})
		ta.st.groups = append(ta.st.groups, group(map[string]string{"job": "a"}, 1, 0))
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			w := ta.do(m, "/pg/api/v1/admin/wipe", nil)
			require.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
			require.Equal(t, "OPTIONS, PUT", w.Header().Get("Allow"))
		}
		w := ta.do(http.MethodPut, "/pg/api/v1/admin/wipe", nil)
		require.Equal(t, http.StatusAccepted, w.Code)
		require.Empty(t, w.Body.String())
		require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), "wipe has no CORS headers")
		require.Equal(t, 1, ta.st.wiped)
		require.Empty(t, ta.st.groups)
	})
}

func TestSelfMetrics(t *testing.T) {
	ta := newTestAPI(t, Config{RoutePrefix: "/pg"})
	ta.do(http.MethodPut, "/pg/metrics/job/a", strings.NewReader(""))
	ta.do(http.MethodPut, "/pg/metrics/job/b", strings.NewReader(""))
	ta.ing.err = fmt.Errorf("%w: collected metric was collected before", store.ErrInconsistent)
	ta.do(http.MethodPut, "/pg/metrics/job/c", strings.NewReader("")) // same route and method, another code
	ta.ing.err = nil
	ta.do(http.MethodDelete, "/pg/metrics/job/a", nil)
	ta.do(http.MethodGet, "/pg/metrics", nil)
	ta.do(http.MethodGet, "/pg/some/random/path", nil)
	ta.do("BREW", "/pg/-/healthy", nil)
	ta.do(http.MethodOptions, "/pg/metrics/job/a", nil)

	fams, err := ta.reg.Gather()
	require.NoError(t, err)
	counts, durations, pushes := map[string]float64{}, map[string]float64{}, map[string]float64{}
	var gauges []string
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				if mf.GetName() == "pushring_ingest_requests_total" {
					pushes[labelString(m)] = m.GetCounter().GetValue()
					continue
				}
				require.Equal(t, "pushring_http_requests_total", mf.GetName())
				counts[labelString(m)] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				require.Equal(t, "pushring_http_request_duration_seconds", mf.GetName())
				durations[labelString(m)] = float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_GAUGE:
				require.Empty(t, m.GetLabel(), mf.GetName())
				gauges = append(gauges, mf.GetName())
			default:
				t.Fatalf("unexpected family %s", mf.GetName())
			}
		}
	}
	want := map[string]float64{
		"code=200,handler=push,method=put":        2,
		"code=400,handler=push,method=put":        1,
		"code=200,handler=delete,method=delete":   1,
		"code=200,handler=metrics,method=get":     1,
		"code=404,handler=other,method=get":       1,
		"code=405,handler=other,method=other":     1,
		"code=200,handler=options,method=options": 1,
	}
	require.Equal(t, want, counts, "one series per (handler, code, method) seen; never a path")
	require.Equal(t, want, durations, "one histogram per (handler, code, method) seen, counting the same requests")
	require.Equal(t, map[string]float64{"code=200,method=put": 2, "code=400,method=put": 1, "code=200,method=delete": 1}, pushes,
		"pushes and deletes by method and exact status")
	require.Equal(t, []string{"pushring_push_bodies_reading", "pushring_push_inflight", "pushring_push_inflight_capacity",
		"pushring_push_memory_budget_bytes", "pushring_push_memory_in_use_bytes", "pushring_push_queue_waiting"}, gauges)
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, lp := range m.GetLabel() {
		parts = append(parts, lp.GetName()+"="+lp.GetValue())
	}
	return strings.Join(parts, ",")
}

func TestStatusCode(t *testing.T) {
	for code, want := range map[int]string{200: "200", 202: "202", 301: "301", 404: "404", 503: "503", 0: "unknown", 600: "unknown"} {
		require.Equal(t, want, statusCode(code), code)
	}
}
