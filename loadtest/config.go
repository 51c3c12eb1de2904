package loadtest

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Mode selects how the harness drives the target.
type Mode string

// The modes of a run.
const (
	// ModeFleet is open loop: every node pushes every interval (± jitter),
	// whatever the target's latency, as a fleet of edge nodes does.
	ModeFleet Mode = "fleet"
	// ModeClosed is closed loop: Concurrency pushers push the groups round
	// robin as fast as the target answers.
	ModeClosed Mode = "closed"
	// ModeScrape pushes every group once, then times Scrapes scrapes of
	// each target's /metrics.
	ModeScrape Mode = "scrape"
)

// Format is the body format of a push.
type Format string

// The push body formats client_golang offers.
const (
	FormatProtobuf Format = "protobuf" // delimited protobuf, the push package's default
	FormatText     Format = "text"     // text 0.0.4, as Python and Java 0.x send
)

// Method is the HTTP method of a push.
type Method string

// The push methods: Pusher.Push and Pusher.Add.
const (
	MethodPut  Method = "put"  // replace the whole group
	MethodPost Method = "post" // replace only the pushed families
)

// Route says which peer a push goes to.
type Route string

// The routes of a push.
const (
	// RouteNode sends node i's pushes to URLs[i%len], as a pusher
	// configured with one peer's address does.
	RouteNode Route = "node"
	// RouteRandom sends every push to a peer chosen at random, as a
	// Kubernetes Service in front of the peers does.
	RouteRandom Route = "random"
)

// Config is one harness run. The defaults (DefaultConfig) model the
// motivating fleet: client_golang pushers of 40 series every 10 s.
type Config struct {
	Mode        Mode
	URLs        []string // push targets; node i pushes to URLs[i%len]
	Job         string
	Nodes       int // nodes (fleet) or groups (closed, scrape)
	Series      int // series per group, histogram buckets included
	Interval    time.Duration
	Jitter      time.Duration // each interval is Interval ± uniform(Jitter)
	Duration    time.Duration
	Concurrency int    // pushers in closed and scrape mode
	Count       uint64 // closed mode stops after Count pushes when > 0
	Workers     int    // fleet mode's bound on pushes in flight; 0 = min(Nodes, 4096)
	Format      Format
	Method      Method
	Timeout     time.Duration // per request, as push.Client(&http.Client{Timeout})
	TTL         time.Duration // sent as the Pushring-TTL header when > 0
	KeepAlive   bool
	Seed        uint64
	Churn       float64 // fraction of nodes that stop pushing halfway

	Check      bool
	CheckWait  time.Duration // re-scrape until every live group is fine, at most this long
	SDURL      string
	ScrapeURLs []string
	TTLGrace   time.Duration

	Scrapes       int
	ScrapeGzip    bool
	ScrapeTimeout time.Duration

	Spawn            int
	GatewayBin       string
	SourceDir        string
	TargetFlags      string
	SpawnPushgateway bool
	PushgatewayBin   string
	PushgatewayFlags string
	ReadyTimeout     time.Duration
	WorkDir          string // keeps the spawned targets' binary and logs; "" = a temporary directory

	Route        Route
	KillAfter    time.Duration // SIGKILL spawned peer KillPeer this long after the push phase starts; 0 = never
	KillPeer     int
	RestartAfter time.Duration // start the killed peer again this long after the kill; 0 = it stays dead

	Progress bool
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{
		Mode: ModeFleet, URLs: []string{"http://127.0.0.1:9091"}, Job: "loadtest",
		// 200 nodes × 40 series every 10 s: a cloudcore-style fleet of edge
		// nodes, scaled to a laptop.
		Nodes: 200, Series: 40, Interval: 10 * time.Second, Jitter: time.Second,
		Duration: time.Minute, Concurrency: 8,
		Format: FormatProtobuf, Method: MethodPut,
		// Real Go pushers often have no timeout; a harness must, or a stuck
		// target stalls the run instead of showing up as timeouts.
		Timeout: 10 * time.Second, KeepAlive: true, Seed: 1,
		TTLGrace: 5 * time.Second, Scrapes: 10, ScrapeTimeout: time.Minute,
		SourceDir: ".", PushgatewayBin: "/usr/bin/prometheus-pushgateway",
		ReadyTimeout: 15 * time.Second, Route: RouteNode, KillPeer: 1, Progress: true,
	}
}

// RegisterFlags binds the config to fs; values already in c are the defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("mode", "fleet (open loop), closed (as fast as possible) or scrape (fill, then time scrapes) (default "+string(c.Mode)+")", enumSetter(&c.Mode, ModeFleet, ModeClosed, ModeScrape))
	fs.Var((*listFlag)(&c.URLs), "url", "comma-separated push base URLs (without /metrics/job/…); ignored with -spawn")
	fs.StringVar(&c.Job, "job", c.Job, "job label of every pushed group")
	fs.IntVar(&c.Nodes, "nodes", c.Nodes, "edge nodes, i.e. groups (instance=edge-NNNNNN)")
	fs.IntVar(&c.Nodes, "groups", c.Nodes, "alias of -nodes")
	fs.IntVar(&c.Series, "series", c.Series, fmt.Sprintf("series per group, histogram buckets included (min %d)", fixedSeries))
	fs.DurationVar(&c.Interval, "interval", c.Interval, "fleet: push interval of each node")
	fs.DurationVar(&c.Jitter, "jitter", c.Jitter, "fleet: each interval varies by ± up to this")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of the push phase")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "closed/scrape: concurrent pushers")
	fs.Uint64Var(&c.Count, "count", c.Count, "closed: stop after this many pushes or at -duration, whichever comes first (0 = duration only; -duration=0 = count only)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "fleet: max pushes in flight (0 = min(nodes, 4096))")
	fs.Func("format", "push body: protobuf or text (default "+string(c.Format)+")", enumSetter(&c.Format, FormatProtobuf, FormatText))
	fs.Func("method", "put (Pusher.Push) or post (Pusher.Add) (default "+string(c.Method)+")", enumSetter(&c.Method, MethodPut, MethodPost))
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "client timeout of every request")
	fs.DurationVar(&c.TTL, "ttl", c.TTL, "send "+TTLHeader+" with this TTL (0 = no header)")
	fs.BoolVar(&c.KeepAlive, "keepalive", c.KeepAlive, "reuse connections (false = one per push, like Python's urllib)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of metric values, jitter and churn choice")
	fs.Float64Var(&c.Churn, "churn", c.Churn, "fraction of nodes that stop pushing halfway (with -ttl, -check expects their groups to expire)")
	c.registerCheckFlags(fs)
	c.registerSpawnFlags(fs)
	c.registerKillFlags(fs)
	fs.BoolVar(&c.Progress, "progress", c.Progress, "print a progress line on stderr every second")
}

func (c *Config) registerCheckFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Check, "check", c.Check, "after the run, verify every group is exposed exactly once with its last pushed values")
	fs.DurationVar(&c.CheckWait, "check-wait", c.CheckWait, "when the first scrape of -check finds problems with live groups, scrape again every second for at most this long until it finds none; the report keeps the first scrape's findings and how long it waited (0 = judge the first scrape)")
	fs.StringVar(&c.SDURL, "sd-url", c.SDURL, "Prometheus HTTP-SD endpoint listing the peers to scrape for -check")
	fs.Var((*listFlag)(&c.ScrapeURLs), "scrape-urls", "comma-separated /metrics URLs to scrape (default: each push URL + /metrics)")
	fs.DurationVar(&c.TTLGrace, "ttl-grace", c.TTLGrace, "how long past TTL -check waits for churned groups to expire")
	fs.IntVar(&c.Scrapes, "scrapes", c.Scrapes, "scrape: timed scrapes of each target")
	fs.BoolVar(&c.ScrapeGzip, "scrape-gzip", c.ScrapeGzip, "scrape: ask for gzip, as Prometheus does (bytes are then compressed bytes)")
	fs.DurationVar(&c.ScrapeTimeout, "scrape-timeout", c.ScrapeTimeout, "timeout of one scrape")
}

func (c *Config) registerSpawnFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Spawn, "spawn", c.Spawn, "start this many local pushring peers and target them")
	fs.StringVar(&c.GatewayBin, "gateway-bin", c.GatewayBin, "pushring binary for -spawn (default: go build ./cmd/pushring from -src)")
	fs.StringVar(&c.SourceDir, "src", c.SourceDir, "module root to build ./cmd/pushring from")
	fs.StringVar(&c.TargetFlags, "target-flags", c.TargetFlags, "extra flags for spawned pushring peers (space-separated)")
	fs.BoolVar(&c.SpawnPushgateway, "spawn-pushgateway", c.SpawnPushgateway, "also start the real Pushgateway and run the same load against it")
	fs.StringVar(&c.PushgatewayBin, "pushgateway-bin", c.PushgatewayBin, "Pushgateway binary for -spawn-pushgateway")
	fs.StringVar(&c.PushgatewayFlags, "pushgateway-flags", c.PushgatewayFlags, "extra flags for the spawned Pushgateway (space-separated)")
	fs.StringVar(&c.WorkDir, "work-dir", c.WorkDir, "directory for the spawned targets' binary and logs, kept after the run (default: a temporary one, removed)")
	fs.DurationVar(&c.ReadyTimeout, "ready-timeout", c.ReadyTimeout, "how long a spawned target may take to answer /-/ready")
}

func (c *Config) registerKillFlags(fs *flag.FlagSet) {
	fs.Func("route", "node (node i pushes to peer i mod peers) or random (each push to a random live peer, as through a Kubernetes Service) (default "+string(c.Route)+")", enumSetter(&c.Route, RouteNode, RouteRandom))
	fs.DurationVar(&c.KillAfter, "kill-peer-after", c.KillAfter, "fleet with -spawn N>1: SIGKILL spawned peer -kill-peer this long after the pushes start; pushes stop going to it from then on (0 = no kill)")
	fs.IntVar(&c.KillPeer, "kill-peer", c.KillPeer, "index of the spawned peer -kill-peer-after kills (0-based; default the second)")
	fs.DurationVar(&c.RestartAfter, "restart-after", c.RestartAfter, "start the killed peer again this long after the kill, same name and ports, no persistence file; pushes go to it again once /-/ready answers 200 (0 = it stays dead)")
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	checks := []check{
		{c.Nodes < 1, "-nodes must be at least 1"},
		{c.Series < fixedSeries, fmt.Sprintf("-series must be at least %d (seq, timestamp and a %d-series histogram)", fixedSeries, fixedSeries-2)},
		{c.Job == "", "-job must not be empty"},
		{c.Mode == ModeFleet && c.Interval <= 0, "-interval must be positive"},
		{c.Mode == ModeFleet && (c.Jitter < 0 || c.Jitter >= c.Interval), "-jitter must be at least 0 and below -interval"},
		{c.Mode != ModeScrape && c.Duration <= 0 && c.Count == 0, "-duration must be positive"},
		{c.Concurrency < 1, "-concurrency must be at least 1"},
		{c.Workers < 0, "-workers must not be negative"},
		{c.Timeout <= 0, "-timeout must be positive: every request needs a bound"},
		{c.TTL < 0 || c.TTLGrace < 0 || c.CheckWait < 0, "-ttl, -ttl-grace and -check-wait must not be negative"},
		{c.Mode == ModeFleet && c.TTL > 0 && c.TTL <= c.Interval+c.Jitter, "-ttl must exceed -interval + -jitter, or live groups expire between pushes"},
		{c.Churn < 0 || c.Churn >= 1, "-churn must be in [0, 1)"},
		{c.Mode == ModeScrape && c.Scrapes < 1, "-scrapes must be at least 1"},
		{c.ScrapeTimeout <= 0 || c.ReadyTimeout <= 0, "-scrape-timeout and -ready-timeout must be positive"},
		{c.Spawn < 0, "-spawn must not be negative"},
		{c.Spawn == 0 && !c.SpawnPushgateway && len(c.URLs) == 0, "-url is required without -spawn"},
		{c.SDURL != "" && len(c.ScrapeURLs) > 0, "-sd-url and -scrape-urls exclude each other"},
	}
	checks = append(checks, c.killChecks()...)
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	return nil
}

// check is one rule of Validate: the message says what to change.
type check struct {
	bad bool
	msg string
}

// killChecks are the rules of -kill-peer-after and -restart-after.
func (c *Config) killChecks() []check {
	if c.KillAfter == 0 && c.RestartAfter == 0 {
		return nil
	}
	return []check{
		{c.KillAfter <= 0, "-restart-after needs -kill-peer-after"},
		{c.Mode != ModeFleet, "-kill-peer-after needs -mode=fleet"},
		{c.Spawn < 2, "-kill-peer-after needs a spawned cluster (-spawn 2 or more)"},
		{c.SpawnPushgateway, "-kill-peer-after and -spawn-pushgateway exclude each other"},
		{c.KillPeer < 0 || c.KillPeer >= c.Spawn, fmt.Sprintf("-kill-peer must name a spawned peer, 0 to %d", c.Spawn-1)},
		{c.RestartAfter < 0, "-restart-after must not be negative"},
		{c.KillAfter+c.RestartAfter >= c.Duration, "-kill-peer-after + -restart-after must be within -duration"},
	}
}

// workers returns the fleet's bound on pushes in flight.
func (c *Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return min(c.Nodes, 4096)
}

// enumSetter returns a flag.Func setter that accepts only the given values.
func enumSetter[T ~string](dst *T, allowed ...T) func(string) error {
	return func(s string) error {
		for _, a := range allowed {
			if T(s) == a {
				*dst = a
				return nil
			}
		}
		return fmt.Errorf("want one of %v", allowed)
	}
}

// listFlag is a comma-separated list flag; setting it replaces the default.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}
