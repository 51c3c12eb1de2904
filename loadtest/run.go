package loadtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
)

// settleTimeout bounds the wait for connection goroutines to exit after
// the run before the leftover client goroutines are counted.
const settleTimeout = 2 * time.Second

// Run validates cfg, then runs the load against every target it names, one
// after the other (each spawned just before its run and stopped after it),
// and returns their reports. progress receives the live progress lines
// when cfg.Progress is set. ctx cancels the run and stops spawned targets.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, progress io.Writer) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	dir, cleanup, err := workDir(cfg.WorkDir)
	if err != nil {
		return Summary{}, err
	}
	defer cleanup()
	var sum Summary
	for _, spec := range targetSpecs(&cfg, dir, logger) {
		rep, err := runSpec(ctx, &cfg, spec, logger, progress)
		if rep.Target != "" { // an interrupted run still reports what it did
			sum.Runs = append(sum.Runs, rep)
		}
		if err != nil {
			return sum, fmt.Errorf("%s: %w", spec.name, err)
		}
	}
	return sum, nil
}

// workDir returns the directory for the spawned targets' binary and logs:
// dir itself, kept after the run, or a temporary one that cleanup removes.
func workDir(dir string) (string, func(), error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("-work-dir: %w", err)
		}
		return dir, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "pushring-loadtest-")
	if err != nil {
		return "", nil, fmt.Errorf("create work dir: %w", err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil // a leftover temporary directory harms nothing
}

// runSpec starts one target, runs the load against it and stops it.
func runSpec(ctx context.Context, cfg *Config, spec targetSpec, logger *slog.Logger, progress io.Writer) (Report, error) {
	t, err := spec.start(ctx)
	if err != nil {
		return Report{}, err
	}
	defer t.stop()
	return runTarget(ctx, cfg, t, logger, progress)
}

// runTarget is one run: push, count leftover goroutines, then scrape and
// check as configured.
func runTarget(ctx context.Context, cfg *Config, t *target, logger *slog.Logger, progress io.Writer) (Report, error) {
	client, tr := pushClient(cfg)
	var sent atomic.Uint64
	r, err := newRouter(cfg.Route, t.pushURLs)
	if err != nil {
		return Report{}, err
	}
	nodes, err := buildNodes(cfg, t.pushURLs, doer{client: client, sent: &sent, router: r})
	if err != nil {
		return Report{}, err
	}
	rssBefore := t.rss()
	baseline := runtime.NumGoroutine()
	st := newStats()
	kill := pushPhase(ctx, cfg, t, r, nodes, st, logger, progress)
	elapsed := time.Since(st.started)
	tr.CloseIdleConnections()
	rep := pushReport(cfg, t, st, elapsed, sent.Load())
	rep.Kill = kill
	rep.Goroutines = settleGoroutines(baseline)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("run interrupted: %w", err)
	}
	peers, err := scrapeTargets(ctx, cfg, t)
	if err != nil {
		return rep, err
	}
	sc := scraper{client: &http.Client{Timeout: cfg.ScrapeTimeout}, gzip: cfg.ScrapeGzip}
	if cfg.Mode == ModeScrape {
		rep.Scrape = measureScrapes(ctx, cfg, sc, peers, t, rssBefore)
	}
	if cfg.Check {
		logger.Info("checking completeness", "target", t.name, "peers", len(peers))
		rep.Check = (&checker{cfg: cfg, sc: scraper{client: sc.client}, peers: peers, nodes: nodes}).run(ctx)
	}
	return rep, nil
}

// pushPhase drives the nodes with the progress line and the killer when
// cfg asks for them, and returns the killer's report (nil without one).
func pushPhase(ctx context.Context, cfg *Config, t *target, r *router, nodes []*node, st *stats, logger *slog.Logger, progress io.Writer) *KillReport {
	if cfg.Progress && progress != nil {
		stop := startProgress(progress, "["+t.name+"]", st)
		defer stop()
	}
	if cfg.KillAfter <= 0 || t.respawn == nil {
		drive(ctx, cfg, nodes, st)
		return nil
	}
	wait := startKiller(ctx, &killer{cfg: cfg, t: t, r: r, start: st.started, logger: logger})
	drive(ctx, cfg, nodes, st)
	return wait()
}

// drive runs the push phase of cfg.Mode.
func drive(ctx context.Context, cfg *Config, nodes []*node, st *stats) {
	switch cfg.Mode {
	case ModeFleet:
		runFleet(ctx, cfg, nodes, st)
	case ModeClosed:
		var until time.Time
		if cfg.Duration > 0 {
			until = time.Now().Add(cfg.Duration)
		}
		runClosed(ctx, cfg, nodes, st, cfg.Count, until)
	case ModeScrape:
		// Fill: every group once, as fast as the target takes it.
		runClosed(ctx, cfg, nodes, st, uint64(len(nodes)), time.Time{})
	}
}

// pushClient builds the client all pushers share: a bounded timeout on
// every request, and as many idle connections as pushes can be in flight,
// so keep-alive connections are reused rather than churned.
func pushClient(cfg *Config) (*http.Client, *http.Transport) {
	conns := cfg.Concurrency
	if cfg.Mode == ModeFleet {
		conns = cfg.workers()
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableKeepAlives:   !cfg.KeepAlive,
	}
	return &http.Client{Timeout: cfg.Timeout, Transport: tr}, tr
}

// buildNodes creates the nodes, node i's pusher built for urls[i%len] (its
// doer's router then picks where each push goes), and marks the churned
// fraction (not in scrape mode) by a seeded shuffle.
func buildNodes(cfg *Config, urls []string, d doer) ([]*node, error) {
	nodes := make([]*node, cfg.Nodes)
	for i := range nodes {
		d.home = i
		n, err := newNode(i, urls[i%len(urls)], cfg, d)
		if err != nil {
			return nil, err
		}
		nodes[i] = n
	}
	if cfg.Mode != ModeScrape {
		churned := int(cfg.Churn * float64(len(nodes)))
		perm := rand.New(rand.NewPCG(cfg.Seed, 0xc4a2)).Perm(len(nodes))
		for _, i := range perm[:churned] {
			nodes[i].churned = true
		}
	}
	return nodes, nil
}

// settleGoroutines waits (bounded) for goroutines of closed connections to
// exit and returns how many more goroutines run than at baseline.
func settleGoroutines(baseline int) int {
	deadline := time.Now().Add(settleTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		<-tick.C
	}
	return max(runtime.NumGoroutine()-baseline, 0)
}

// pushReport fills a Report's push figures.
func pushReport(cfg *Config, t *target, st *stats, elapsed time.Duration, sent uint64) Report {
	ok := st.succeeded.Load()
	rep := Report{
		Target: t.name, URLs: t.pushURLs, Mode: cfg.Mode, Groups: cfg.Nodes, SeriesPerGroup: cfg.Series,
		Format: cfg.Format, Method: cfg.Method, DurationSeconds: elapsed.Seconds(),
		Pushes: st.attempted.Load(), Succeeded: ok,
		PushesPerSecond: float64(ok) / elapsed.Seconds(),
		SeriesPerSecond: float64(ok) * float64(cfg.Series) / elapsed.Seconds(),
		BytesSent:       sent, SkippedTicks: st.skipped.Load(),
		Latency: summarize(&st.latency), Errors: st.errorCounts(),
	}
	if cfg.Mode == ModeFleet {
		lag := summarize(&st.lag)
		rep.ScheduleLag = &lag
	}
	return rep
}

// scrapeTargets returns the /metrics URLs to scrape: the spawned peers,
// else the HTTP-SD answer, else -scrape-urls, else each push URL's /metrics.
func scrapeTargets(ctx context.Context, cfg *Config, t *target) ([]string, error) {
	switch {
	case len(t.scrapeURLs) > 0:
		return t.scrapeURLs, nil
	case cfg.SDURL != "":
		return discover(ctx, &http.Client{Timeout: cfg.ScrapeTimeout}, cfg.SDURL)
	case len(cfg.ScrapeURLs) > 0:
		return cfg.ScrapeURLs, nil
	}
	var urls []string
	for _, u := range t.pushURLs {
		if !strings.Contains(u, "://") {
			u = "http://" + u // as push.New does
		}
		urls = append(urls, strings.TrimSuffix(u, "/")+"/metrics")
	}
	return urls, nil
}
