package api

import (
	"flag"
	"fmt"
	"math"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/pushring/pushring/internal/flagcheck"
)

// Config configures the HTTP API. The first group of fields are flags with
// the Pushgateway's names and defaults; the second group is supplied by the
// binary at startup.
type Config struct {
	// TelemetryPath is where the gateway's own and the pushed metrics are
	// exposed, below the route prefix (--web.telemetry-path).
	TelemetryPath string
	// ExternalURL is the URL under which the gateway is reachable from
	// outside (--web.external-url). Its path is the default route prefix and
	// the prefix of links on the status page.
	ExternalURL string
	// RoutePrefix is the prefix of every route (--web.route-prefix); empty
	// means the path of ExternalURL. Use Prefix for the effective value.
	RoutePrefix string
	// EnableLifecycle enables PUT/POST /-/quit and /-/reload
	// (--web.enable-lifecycle).
	EnableLifecycle bool
	// EnableAdminAPI enables PUT /api/v1/admin/wipe (--web.enable-admin-api).
	EnableAdminAPI bool
	// EnablePprof serves the Go profiles under /debug/pprof/
	// (--web.enable-pprof). Off by default: profiles reveal the command
	// line and memory contents, and a CPU profile or trace costs a 2-core
	// peer dearly, so only an operator who asks for them gets them.
	EnablePprof bool
	// MaxInflight is how many pushes and deletes are handled at once
	// (--push.max-inflight); more wait for a slot. 0 means no limit.
	MaxInflight int
	// MaxQueueWait is how long a push waits for a slot before it gets 503
	// (--push.max-queue-wait); 0 refuses at once when every slot is taken.
	MaxQueueWait time.Duration
	// BodyTimeout bounds the time a push body takes to arrive
	// (--push.body-timeout); 0 is DefaultBodyTimeout.
	BodyTimeout time.Duration
	// MinBodyRate is the slowest a push body may arrive once its first
	// seconds have passed, in bytes per second (--push.min-body-rate); 0
	// leaves only BodyTimeout.
	MinBodyRate int64
	// MemoryBudget bounds the bytes of the push bodies being read and
	// decoded at once (--push.memory-budget-bytes); 0 picks a quarter of
	// the Go memory limit, at least four maximal bodies.
	MemoryBudget int64
	// PreferOpenMetrics answers a scrape in OpenMetrics whenever the
	// scraper accepts it (--web.prefer-openmetrics); by default it is the
	// answer only when the scraper accepts nothing else (Negotiate).
	PreferOpenMetrics bool

	// MaxBodyBytes bounds a push body after decompression, as the
	// ingester's --push.max-body-bytes does; 0 means no limit.
	MaxBodyBytes int64
	// Flags is every command-line flag and its value, shown by
	// /api/v1/status.
	Flags map[string]string
	// BuildInfo is the build_information object of /api/v1/status (keys
	// version, revision, branch, buildUser, buildDate, goVersion).
	BuildInfo map[string]string
	// StartTime is when the process started; zero means when New ran.
	StartTime time.Time
}

// Defaults of the Pushgateway's flags are the Pushgateway's, so an
// operator's command line and scrape configuration keep working unchanged.
const (
	defaultTelemetryPath = "/metrics"
)

// Admission control flags and defaults (docs/design.md, "Bounded").
const (
	flagMaxInflight  = "push.max-inflight"
	flagMaxQueueWait = "push.max-queue-wait"

	// DefaultMaxInflight is the default of --push.max-inflight. A push
	// takes well under a millisecond of CPU on a 2-core peer (BENCHMARKS.md),
	// so 64 concurrent pushes keep both cores busy even when many of them
	// are still receiving their bodies, while bounding the decoded bodies
	// held in memory to 64 × --push.max-body-bytes in the worst case.
	DefaultMaxInflight = 64
	// DefaultMaxQueueWait is the default of --push.max-queue-wait: long
	// enough to ride out a burst (a slot frees every few milliseconds at
	// full load), short enough that a client with a 1 s timeout still gets
	// the 503 and its Retry-After instead of timing out.
	DefaultMaxQueueWait = 250 * time.Millisecond
)

// RegisterFlags registers the web flags of the API on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.TelemetryPath, "web.telemetry-path", defaultTelemetryPath,
		"Path under which to expose the gateway's own and the pushed metrics.")
	fs.StringVar(&c.ExternalURL, "web.external-url", "",
		"The URL under which the gateway is externally reachable. Its path is the default route prefix.")
	fs.StringVar(&c.RoutePrefix, "web.route-prefix", "",
		"Prefix for the internal routes of web endpoints. Defaults to the path of --web.external-url.")
	fs.BoolVar(&c.EnableLifecycle, "web.enable-lifecycle", false,
		"Enable shutdown and reload via HTTP request (PUT or POST /-/quit and /-/reload).")
	fs.BoolVar(&c.EnableAdminAPI, "web.enable-admin-api", false,
		"Enable API endpoints for admin control actions (PUT /api/v1/admin/wipe).")
	fs.BoolVar(&c.EnablePprof, "web.enable-pprof", false,
		"Serve the Go profiles (CPU, heap, goroutines, trace) under /debug/pprof/. Off by default: anyone who reaches the port could read them.")
	fs.IntVar(&c.MaxInflight, flagMaxInflight, DefaultMaxInflight,
		"Maximum number of pushes and deletes handled at once; more wait up to --push.max-queue-wait, then get 503 with Retry-After. 0 switches the limit off.")
	fs.DurationVar(&c.MaxQueueWait, flagMaxQueueWait, DefaultMaxQueueWait,
		"How long a push waits for one of the --push.max-inflight slots before it gets 503 with Retry-After. 0 refuses at once.")
	fs.DurationVar(&c.BodyTimeout, flagBodyTimeout, DefaultBodyTimeout,
		"Maximum time a push body may take to arrive (at most --web.read-timeout); slower pushes get 408. Bodies are read before a push takes one of the --push.max-inflight slots.")
	fs.Int64Var(&c.MinBodyRate, flagMinBodyRate, DefaultMinBodyRate,
		"Slowest rate, in bytes per second, at which a push body may arrive once its first 5 s have passed; slower pushes get 408. 0: only --push.body-timeout applies.")
	fs.Int64Var(&c.MemoryBudget, flagMemoryBudget, 0,
		"Bytes the push bodies being read and decoded may hold at once: decompressed bodies, and an estimate of their decoded series (~400 bytes each) charged before a push is admitted; over it a push gets 503 with Retry-After. 0: a quarter of the Go memory limit (GOMEMLIMIT, which follows the container's limit), and at least four bodies of --push.max-body-bytes.")
	fs.BoolVar(&c.PreferOpenMetrics, "web.prefer-openmetrics", false,
		"Answer scrapes in OpenMetrics whenever the scraper accepts it. By default a scrape gets protobuf or text whenever it accepts either, as from the Pushgateway, and OpenMetrics only when it accepts nothing else.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if !strings.HasPrefix(c.TelemetryPath, "/") || strings.ContainsAny(c.TelemetryPath, "{}") {
		return fmt.Errorf("invalid --web.telemetry-path %q: must start with / and contain no braces", c.TelemetryPath)
	}
	if c.MaxInflight < 0 {
		return fmt.Errorf("invalid --%s %d: must not be negative (0 switches admission control off)", flagMaxInflight, c.MaxInflight)
	}
	if err := flagcheck.Durations(
		flagcheck.Duration{Flag: flagMaxQueueWait, Value: c.MaxQueueWait, ZeroOK: true},
		flagcheck.Duration{Flag: flagBodyTimeout, Value: c.BodyTimeout, ZeroOK: true},
	); err != nil {
		return err
	}
	if c.MinBodyRate < 0 {
		return fmt.Errorf("invalid --%s %d: must not be negative", flagMinBodyRate, c.MinBodyRate)
	}
	if c.MemoryBudget < 0 || (c.MemoryBudget > 0 && c.MemoryBudget < minBudget(c.MaxBodyBytes)) {
		return fmt.Errorf("invalid --%s %d: must be 0 (automatic) or at least %d, four bodies of --push.max-body-bytes", flagMemoryBudget, c.MemoryBudget, minBudget(c.MaxBodyBytes))
	}
	if _, err := c.externalURL(); err != nil {
		return err
	}
	p, err := c.Prefix()
	if err != nil {
		return err
	}
	if p != "" && (p == "/" || path.Clean(p) != p || strings.ContainsAny(p, "{}")) {
		return fmt.Errorf("invalid route prefix %q: must be a clean path without braces; check --web.route-prefix and --web.external-url", p)
	}
	return nil
}

// Prefix returns the effective route prefix with the Pushgateway's rules:
// RoutePrefix, else the path of ExternalURL; "/" becomes ""; otherwise a
// leading "/" is ensured and one trailing "/" removed.
func (c *Config) Prefix() (string, error) {
	if c.RoutePrefix != "" {
		return normalizePrefix(c.RoutePrefix), nil
	}
	u, err := c.externalURL()
	if err != nil {
		return "", err
	}
	return normalizePrefix(u.Path), nil
}

// ExternalPrefix returns the path prefix of links handed out to browsers:
// the path of ExternalURL, normalised like a route prefix.
func (c *Config) ExternalPrefix() (string, error) {
	u, err := c.externalURL()
	if err != nil {
		return "", err
	}
	return normalizePrefix(u.Path), nil
}

func (c *Config) externalURL() (*url.URL, error) {
	u, err := url.Parse(c.ExternalURL)
	if err != nil {
		return nil, fmt.Errorf("invalid --web.external-url: %w", err)
	}
	return u, nil
}

func normalizePrefix(p string) string {
	if p == "" || p == "/" {
		return ""
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return strings.TrimSuffix(p, "/")
}

// minBudget is the smallest memory budget the flag may set: four bodies of
// the largest size. A body of short series costs more to decode than that
// (ingest.DecodeCost) and is refused with 503 naming the flag.
func minBudget(maxBody int64) int64 { return 4 * maxBody }

// budgetBytes returns the memory budget in force: MemoryBudget, or a quarter
// of limit (the Go memory limit) but at least minBudget, or 1 GiB when
// there is no limit.
func (c *Config) budgetBytes(limit int64) int64 {
	if c.MemoryBudget > 0 {
		return c.MemoryBudget
	}
	b := int64(1 << 30)
	if limit > 0 && limit < math.MaxInt64 {
		b = limit / 4
	}
	return max(b, minBudget(c.MaxBodyBytes))
}
