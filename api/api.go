// Package api serves pushring over HTTP with the Pushgateway's routes, status
// codes, headers and JSON shapes: push and delete, the scrape endpoint, the
// JSON API under /api/v1, health and lifecycle endpoints, the web UI (ui*.go,
// ui/) and, with --web.enable-pprof, pprof. It holds no business logic: pushes go to the ingester, reads come
// from the store, and one function (statusOf) maps errors to status codes.
//
// A push's body is read first, outside admission control, under its own
// deadline, minimum rate and a memory budget shared by every body being
// read and decoded (body.go, budget.go). Pushes and deletes then pass
// admission control (admission.go): a fixed
// number are handled at once, a bounded number wait a bounded time for a
// slot, and the rest get 503 with Retry-After at once, so an overloaded
// peer answers quickly instead of queueing without bound.
package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/store"
)

// Pusher takes a push or delete wherever it must go: applied here, or on
// the peer that owns its group. It is called concurrently from request
// goroutines, may block until the write is applied (or refused) and
// honours ctx. It reads r.Body but does not close it, and keeps nothing of
// it once it returns without an error: the body's buffer then goes to a
// later push (ingest.Body.Release). A refusal is an error statusOf maps.
type Pusher interface {
	Handle(ctx context.Context, r ingest.Request) (ingest.Result, error)
}

// Ingester is what the API needs of the ingester besides pushes. Both
// methods are safe for concurrent use.
type Ingester interface {
	// CountOverloaded counts a push that admission control refused before
	// it reached the Pusher, under the ingester's rejection reasons. It
	// does not block.
	CountOverloaded()
	// CountRefused counts a push the api refused while reading its body,
	// under reason (ingest.ReasonMemoryBudget, ReasonBodyTimeout or
	// ReasonBody). It does not block.
	CountRefused(reason string)
	// ReloadRules re-reads the TTL rules file. On error the rules in force
	// stay, and the error says what is wrong with the file.
	ReloadRules() error
	// TTLRules returns the TTL rules in force, in the order they are
	// tried.
	TTLRules() []ingest.TTLRule
}

// Store is what the API reads and wipes. Its methods are safe for concurrent
// use and do not block on network I/O.
type Store interface {
	// WriteExposition writes every group merged with extra (the gateway's
	// own families) in format f.
	WriteExposition(w io.Writer, f store.Format, extra []*dto.MetricFamily) error
	// WriteExpositionGzip is WriteExposition as one gzip member.
	WriteExpositionGzip(w io.Writer, f store.Format, extra []*dto.MetricFamily) error
	// Snapshot returns a deep copy of every group sorted by key; the caller
	// owns it.
	Snapshot() []store.GroupSnapshot
	// Range calls fn with a deep copy of one group at a time, sorted by
	// key, until fn returns false; fn runs without the store's lock and
	// owns what it is given. Reads of a whole peer use it so that their
	// memory does not grow with the store.
	Range(fn func(store.GroupSnapshot) bool)
	// RangeSummaries calls fn with the summary of one group at a time,
	// ordered by job, then key, until fn returns false; fn runs without
	// the store's lock. The groups pages read the store this way.
	RangeSummaries(fn func(store.GroupSummary) bool)
	// Group returns a deep copy of one group and whether it exists.
	Group(k store.GroupKey) (store.GroupSnapshot, bool)
	// Wipe removes every group and returns how many there were.
	Wipe() int
}

// Deps are the components the API serves; the binary hands it the
// concrete ones.
type Deps struct {
	Pusher    Pusher
	Ingester  Ingester
	Store     Store
	Cluster   Cluster
	Admission *Admission
	// Budget is the push memory budget (NewBudget), shared with the
	// cluster's peer server, which charges forwarded pushes to it.
	Budget *Budget
	// Own gathers the gateway's own metrics (go_*, process_*, pushring_*),
	// which /metrics exposes next to the pushed ones.
	Own prometheus.Gatherer
}

// API is the HTTP front of one peer. Create it with New; it is safe for
// concurrent use.
type API struct {
	cfg      Config
	prefix   string // effective route prefix: "" or "/x"
	extern   string // path prefix of links on the status page
	pusher   Pusher
	ingester Ingester
	store    Store
	cluster  Cluster
	own      prometheus.Gatherer
	logger   *slog.Logger
	metrics  *metrics
	admit    *Admission
	bodies   *bodyReader
	handler  http.Handler
	ui       *uiPage

	// views holds a token per cluster-wide view being built: each holds
	// every peer's groups in memory, so only a few run at once.
	views chan struct{}

	quitOnce sync.Once
	quit     chan struct{}
}

// New builds the API; reg receives the HTTP self-metrics.
func New(cfg Config, deps Deps, logger *slog.Logger, reg prometheus.Registerer) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	prefix, _ := cfg.Prefix()         // Validate checked it
	extern, _ := cfg.ExternalPrefix() // Validate checked it
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.StartTime.IsZero() {
		cfg.StartTime = time.Now()
	}
	ui, err := newUIPage()
	if err != nil {
		return nil, err
	}
	a := &API{
		cfg:      cfg,
		prefix:   prefix,
		extern:   extern,
		pusher:   deps.Pusher,
		ingester: deps.Ingester,
		store:    deps.Store,
		cluster:  deps.Cluster,
		own:      deps.Own,
		logger:   logger,
		ui:       ui,
		admit:    deps.Admission,
		bodies: &bodyReader{timeout: cfg.BodyTimeout, grace: min(bodyGrace, cfg.BodyTimeout), minRate: cfg.MinBodyRate, maxBody: cfg.MaxBodyBytes,
			budget: deps.Budget.b},
		views: make(chan struct{}, maxClusterViews),
		quit:  make(chan struct{}),
	}
	mux, names, err := a.routes()
	if err != nil {
		return nil, err
	}
	a.metrics = newMetrics(reg, a.admit, a.bodies) // only once nothing can fail any more
	a.handler = a.metrics.instrument(a.pushFirst(mux), names)
	return a, nil
}

// Handler returns the handler of every route.
func (a *API) Handler() http.Handler { return a.handler }

// Quit returns a channel that is closed once a permitted /-/quit request
// asked the process to terminate.
func (a *API) Quit() <-chan struct{} { return a.quit }

// route is one pattern of the mux and the name its requests are counted under.
type route struct {
	pattern string // without the prefix; "METHOD /path"
	name    string
	h       http.Handler
}

// routes builds the mux and the map from its patterns to route names. Go's
// method patterns answer 405 with Allow for a known path and a wrong
// method, and 404 for an unknown path.
func (a *API) routes() (mux *http.ServeMux, names map[string]string, err error) {
	mux = http.NewServeMux()
	names = map[string]string{}
	defer func() {
		// ServeMux panics on a pattern that conflicts with another; a
		// telemetry path such as /-/healthy would.
		if r := recover(); r != nil {
			mux, names, err = nil, nil, fmt.Errorf("register routes: %v; check --web.telemetry-path", r)
		}
	}()
	var paths, getPaths []string // paths served with a method, in table order
	seen := map[string]bool{}
	for _, rt := range a.routeTable() {
		method, p, _ := strings.Cut(rt.pattern, " ")
		pattern := strings.TrimPrefix(method+" "+a.prefix+p, " ") // no method: any
		mux.Handle(pattern, rt.h)
		names[pattern] = rt.name
		if method != "" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
		if method == http.MethodGet {
			getPaths = append(getPaths, p)
		}
	}
	a.optionsRoutes(mux, names, paths)
	a.headRoutes(mux, names, getPaths)
	return mux, names, nil
}

// optionsRoutes answers OPTIONS on every path some route serves with 200 and
// an Allow header, as the Pushgateway's router does; it also makes Go's 405
// answers list OPTIONS. The JSON API has its own OPTIONS route.
func (a *API) optionsRoutes(mux *http.ServeMux, names map[string]string, paths []string) {
	h := a.serve(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", allowedMethods(mux, r))
		w.WriteHeader(http.StatusOK)
		return nil
	})
	for _, p := range paths {
		if strings.HasPrefix(p, "/api/v1/") {
			continue
		}
		pattern := http.MethodOptions + " " + a.prefix + p
		mux.Handle(pattern, h)
		names[pattern] = "options"
	}
}

// headRoutes answers HEAD with 405 where Go's mux would serve it as a GET:
// the Pushgateway's router has no automatic HEAD, and differential tests
// compare the two.
func (a *API) headRoutes(mux *http.ServeMux, names map[string]string, getPaths []string) {
	h := a.serve(func(_ http.ResponseWriter, r *http.Request) error {
		return &methodNotAllowedError{allow: allowedMethods(mux, r)}
	})
	for _, p := range getPaths {
		pattern := http.MethodHead + " " + a.prefix + p
		mux.Handle(pattern, h)
		names[pattern] = routeOther
	}
}

// allowedMethods lists the methods some route serves r's path with, plus
// OPTIONS, sorted and comma-separated like an Allow header.
func allowedMethods(mux *http.ServeMux, r *http.Request) string {
	allow := []string{http.MethodOptions}
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		// Patterns without a method (starting with "/") are catch-alls
		// that answer 404 or 405 themselves.
		if _, pattern := mux.Handler(probe); pattern != "" && !strings.HasPrefix(pattern, "/") {
			allow = append(allow, m)
		}
	}
	sort.Strings(allow)
	return strings.Join(allow, ", ")
}

// probeMethods are the methods an OPTIONS answer may list.
var probeMethods = []string{http.MethodDelete, http.MethodGet, http.MethodPost, http.MethodPut}

// routeTable lists every route. Paths are relative to the prefix.
func (a *API) routeTable() []route {
	rs := []route{
		{"GET " + path.Join("/", a.cfg.TelemetryPath), "metrics", a.serve(a.scrape)},
		{"GET /-/healthy", "healthy", a.serve(a.healthy)},
		{"GET /-/ready", "ready", a.serve(a.ready)},
		{"PUT /-/quit", "quit", a.serve(a.quitHandler)},
		{"POST /-/quit", "quit", a.serve(a.quitHandler)},
		{"GET /-/quit", "quit", a.serve(lifecycleMethod)},
		{"PUT /-/reload", "reload", a.serve(a.reloadHandler)},
		{"POST /-/reload", "reload", a.serve(a.reloadHandler)},
		{"GET /-/reload", "reload", a.serve(lifecycleMethod)},
	}
	rs = append(rs, a.uiRoutes()...)
	if a.cfg.EnablePprof {
		rs = append(rs,
			route{"GET /debug/pprof/{name...}", "pprof", a.serve(pprofHandler)},
			route{"POST /debug/pprof/symbol", "pprof", a.serve(pprofHandler)})
	}
	rs = append(rs, a.pushRoutes()...)
	rs = append(rs, a.clusterRoutes()...)
	rs = append(rs, a.apiRoutes()...)
	if a.prefix != "" {
		rs = append(rs, route{"GET ", "ui/groups", a.serve(a.redirectToPrefix)})
	}
	return rs
}

// pushRoutes are the Pushgateway's push and delete routes, with a plain and
// a base64-encoded job name.
func (a *API) pushRoutes() []route {
	var rs []route
	for _, job := range []string{"/metrics/job/", "/metrics/job@base64/"} {
		rs = append(rs,
			// Without this, the mux would redirect .../job to .../job/.
			route{" " + strings.TrimSuffix(job, "/"), routeOther, a.serve(notFound)},
			route{"PUT " + job + "{rest...}", "push", a.serve(a.push)},
			route{"POST " + job + "{rest...}", "push", a.serve(a.push)},
			route{"DELETE " + job + "{rest...}", "delete", a.serve(a.push)},
		)
	}
	return rs
}

func notFound(http.ResponseWriter, *http.Request) error { return errNotFound }

// pushFirst hands pushes and deletes to the push handler before the mux
// sees them. The mux answers a path with "//" or "/./" by redirecting to
// the cleaned path, and a redirected push is lost: prom-client sends "//"
// for an empty label value and takes the 3xx for success; Python raises.
// The ingester parses the escaped path itself, so it needs no cleaning.
func (a *API) pushFirst(mux *http.ServeMux) http.Handler {
	push := a.serve(a.push)
	prefixes := []string{a.prefix + "/metrics/job/", a.prefix + "/metrics/job@base64/"}
	// The patterns that name the routes in the self-metrics, by method and
	// prefix.
	methods := []string{http.MethodPut, http.MethodPost, http.MethodDelete}
	patterns := make(map[string][]string, len(methods))
	for _, m := range methods {
		for _, p := range prefixes {
			patterns[m] = append(patterns[m], m+" "+p+"{rest...}")
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ps, ok := patterns[r.Method]; ok {
			for i, p := range prefixes {
				if strings.HasPrefix(r.URL.Path, p) {
					r.Pattern = ps[i]
					push.ServeHTTP(w, r)
					return
				}
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// redirectToPrefix answers GET <prefix> with 301 to <prefix>/, as the
// Pushgateway's router does.
func (a *API) redirectToPrefix(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, a.prefix+"/", http.StatusMovedPermanently)
	return nil
}
