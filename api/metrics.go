package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the HTTP self-metrics. Every label comes from a fixed set: the
// route name (push, delete, metrics, ...), the status code and a known
// method; never a path, a grouping key or a pushed value. Pushes and
// scrapes are counted and timed under handler="push" and "metrics".
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	pushes   *prometheus.CounterVec
	// children holds the children of the vectors above already looked
	// up, by requestKey and pushKey: a request reads them without the
	// vectors' hashing and read locks, which every request would
	// otherwise take three times. The label sets are bounded (see
	// metrics), so is the cache.
	children sync.Map
}

// requestKey picks the request metrics' children: the pattern the mux
// matched, the code label and the method label.
type requestKey struct{ pattern, code, method string }

// pushKey picks the child of pushes: the method and code labels.
type pushKey struct{ method, code string }

// requestChildren are the children of requests and duration for one
// requestKey.
type requestChildren struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// request returns the children of requests and duration for the route
// that pattern names (names), code and method.
func (m *metrics) request(names map[string]string, pattern, code, method string) *requestChildren {
	k := requestKey{pattern, code, method}
	if c, ok := m.children.Load(k); ok {
		return c.(*requestChildren)
	}
	name, ok := names[pattern]
	if !ok {
		name = routeOther
	}
	c, _ := m.children.LoadOrStore(k, &requestChildren{
		requests: m.requests.WithLabelValues(name, code, method),
		duration: m.duration.WithLabelValues(name, code, method),
	})
	return c.(*requestChildren)
}

// push returns the child of pushes for method and code.
func (m *metrics) push(method, code string) prometheus.Counter {
	k := pushKey{method, code}
	if c, ok := m.children.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.children.LoadOrStore(k, m.pushes.WithLabelValues(method, code))
	return c.(prometheus.Counter)
}

// httpLabels are the labels of both request metrics.
var httpLabels = []string{"handler", "code", "method"}

func newMetrics(reg prometheus.Registerer, adm *Admission, br *bodyReader) *metrics {
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushring_push_bodies_reading",
		Help: "Push bodies being received, before their pushes take a slot.",
	}, func() float64 { return float64(br.reading.Load()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushring_push_memory_budget_bytes",
		Help: "Bytes the push bodies being read and decoded may hold (--push.memory-budget-bytes, or its automatic value).",
	}, func() float64 { return float64(br.budget.max) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushring_push_memory_in_use_bytes",
		Help: "Bytes of the memory budget held now by push bodies being read and decoded.",
	}, func() float64 { return float64(br.budget.inUse()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushring_push_inflight",
		Help: "Pushes and deletes being handled now.",
	}, func() float64 { return float64(adm.inflight()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushring_push_inflight_capacity",
		Help: "Pushes and deletes that may be handled at once (--push.max-inflight).",
	}, func() float64 { return float64(adm.capacity()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushring_push_queue_waiting",
		Help: "Pushes and deletes waiting for a slot (at most --push.max-inflight; see --push.max-queue-wait).",
	}, func() float64 { return float64(adm.queued()) })
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_http_requests_total",
			Help: "HTTP requests served, by route, status code and method.",
		}, httpLabels),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pushring_http_request_duration_seconds",
			Help: "Time to serve an HTTP request, by route, status code and method.",
			// 0.5 ms to ~8 s in steps of 4: a push or a small scrape takes
			// well under a millisecond, a scrape of a full peer seconds.
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, httpLabels),
		pushes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_ingest_requests_total",
			Help: "Push and delete requests this peer took over HTTP, by method and status code; a push forwarded to its owner is counted here, with the owner's answer.",
		}, []string{"method", "code"}),
	}
}

// routeOther names requests no route matched (404, 405 and redirects the
// mux answers itself).
const routeOther = "other"

// instrument counts every request under the name of the route that served
// it. The mux records the matched pattern in r.Pattern; names maps patterns
// to route names, so a label never holds a path.
func (m *metrics) instrument(next http.Handler, names map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			c := m.request(names, r.Pattern, statusCode(sw.status()), methodLabel(r.Method))
			c.requests.Inc()
			c.duration.Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusCode is the code label: the status code ("200", "503"), as in
// pushring_ingest_requests_total and the Pushgateway's
// pushgateway_http_requests_total, so one query fits all three. The server
// writes a bounded set of codes; anything outside 100-599 is "unknown".
func statusCode(code int) string {
	if code < 100 || code > 599 {
		return "unknown"
	}
	return statusCodes[code-100]
}

// statusCodes holds the code labels of 100-599, so that counting an
// answer formats nothing.
var statusCodes = func() (codes [500]string) {
	for i := range codes {
		codes[i] = strconv.Itoa(100 + i)
	}
	return codes
}()

// methodLabel bounds the method label: clients choose the method string.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet:
		return "get"
	case http.MethodHead:
		return "head"
	case http.MethodPost:
		return "post"
	case http.MethodPut:
		return "put"
	case http.MethodDelete:
		return "delete"
	case http.MethodOptions:
		return "options"
	case http.MethodPatch:
		return "patch"
	}
	return "other"
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx are interim, the final status follows
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
