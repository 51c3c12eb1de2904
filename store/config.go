package store

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// ownPrefix starts the names of the gateway's own metrics. Pushed families
// may not use it, so a pusher can never shadow or break them.
const ownPrefix = "pushring_"

// Defaults of the per-peer limits. BenchmarkHeapPerSeries measures ~245 B
// of heap per stored series, so DefaultMaxSeries means about 0.5 GiB of
// heap, plus at most DefaultMaxRenderCacheBytes of renderings kept for
// protobuf and OpenMetrics scrapes: what a peer sized for the design's ~1M
// series holds with room for a burst. A series is a
// sample line, as Prometheus counts them.
// DefaultMaxGroups allows 200k edge nodes of ~10 series each; every group
// also carries its two push-time gauges, which count as series.
const (
	DefaultMaxGroups = 200_000
	DefaultMaxSeries = 2_000_000
	// DefaultMaxFailureGroups bounds the failure-only groups (two series
	// each) to a twentieth of DefaultMaxGroups: enough for a fleet whose
	// pushes all fail for a while, no room for a flood of refusals.
	DefaultMaxFailureGroups = 10_000
	// DefaultMaxBytes is 256 MiB of sample lines. Small series take
	// ~60 bytes of them, so 2M such series stay well below it; series
	// with 300-byte label values reach it at ~800k series.
	// BENCHMARKS.md measures the heap they take.
	DefaultMaxBytes = 256 << 20
)

// Config configures a Store.
type Config struct {
	// Reserved maps the names of the gateway's own families (go_*,
	// process_*, pushring_*) to their types. A pushed family of such a name
	// must have the same type; it is then merged into the own family at
	// scrape time, under the own HELP. Set it once, before the first push;
	// ReservedFamilies builds it from a Gatherer. The store does not modify
	// the map.
	Reserved map[string]dto.MetricType

	// MaxGroups bounds the groups of this peer; 0 is unlimited. A push or
	// restore that would create one more group is refused with ErrLimit.
	MaxGroups int
	// MaxSeries bounds the series of this peer (metrics of stored families,
	// push-time gauges included); 0 is unlimited. A write whose net growth
	// (series added minus series it replaces or drops) does not fit is
	// refused whole with ErrLimit; a write that does not grow always fits.
	MaxSeries int
	// MaxBytes bounds the sample bytes of this peer: the rendered sample
	// lines of every stored family, label names and values included, so
	// it is what bounds a store of series with long label values, which
	// MaxSeries cannot. 0 is unlimited. Refused like MaxSeries.
	MaxBytes int64
	// MaxFailureGroups bounds the failure-only groups: groups that exist
	// only because pushes to them were refused (they hold nothing but
	// push_failure_time_seconds and a zero push_time_seconds). They do not
	// count against MaxGroups, so refused pushes cannot lock valid pushers
	// out; past this bound a refused push for a new group records no
	// failure time. 0 is unlimited.
	MaxFailureGroups int
	// MaxRenderCacheBytes bounds the protobuf and OpenMetrics renderings and
	// the gzipped text chunks that scrapes keep so that the next scrape in
	// that format only copies them (renderCache). A scrape past it renders the
	// rest for itself and keeps nothing, so the memory a scrape adds is
	// bounded whatever the store's size. 0 is unlimited.
	MaxRenderCacheBytes int64

	// Clock tells Restore what time it is, so that a restored group whose
	// TTL deadline has passed is not inserted, and stamps group versions.
	// Nil is RealClock. RunExpiry takes its own clock.
	Clock Clock

	// TombstoneTTL is how long a deleted group's version is remembered, so
	// that an older copy handed over later by a previous owner does not
	// bring it back (Receive). 0 keeps no tombstones: a single peer has
	// nobody to hand it stale copies. A cluster keeps them for longer than
	// a hand-off can take.
	TombstoneTTL time.Duration
}

// RegisterFlags registers the per-peer limits with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.MaxGroups, "store.max-groups", DefaultMaxGroups,
		"Most groups this peer stores. A push that would create another one is refused with 429. 0: unlimited.")
	fs.Int64Var(&c.MaxBytes, "store.max-bytes", DefaultMaxBytes,
		"Most bytes of sample lines (as in the text exposition, label names and values included) this peer stores; unlike --store.max-series it bounds series with long label values. A push that would grow the store past it is refused whole with 429. 0: unlimited.")
	fs.IntVar(&c.MaxFailureGroups, "store.max-failure-groups", DefaultMaxFailureGroups,
		"Most failure-only groups (groups that exist only because pushes to them were refused) this peer stores. They do not count against --store.max-groups; past this limit a refused push for a new group records no failure time. 0: unlimited.")
	fs.Int64Var(&c.MaxRenderCacheBytes, "store.max-render-cache-bytes", DefaultMaxRenderCacheBytes,
		"Most bytes of protobuf and OpenMetrics renderings and gzipped text chunks that scrapes keep for the next scrape in that format. Past it a scrape renders the rest afresh and keeps nothing, so scrapes add bounded memory whatever the store's size, at the cost of CPU per scrape. 0: unlimited.")
	fs.IntVar(&c.MaxSeries, "store.max-series", DefaultMaxSeries,
		"Most series (sample lines, as Prometheus counts them) this peer stores, push-time gauges included (~245 B of heap each; renderings kept for protobuf and OpenMetrics scrapes come on top, bounded by --store.max-render-cache-bytes). A push that would grow the store past it is refused whole with 429; pushes that replace as many series as they add still succeed. 0: unlimited.")
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.MaxGroups < 0 {
		errs = append(errs, fmt.Errorf("--store.max-groups must not be negative, got %d", c.MaxGroups))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("--store.max-bytes must not be negative, got %d", c.MaxBytes))
	}
	if c.MaxFailureGroups < 0 {
		errs = append(errs, fmt.Errorf("--store.max-failure-groups must not be negative, got %d", c.MaxFailureGroups))
	}
	if c.MaxRenderCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("--store.max-render-cache-bytes must not be negative, got %d", c.MaxRenderCacheBytes))
	}
	if c.MaxSeries < 0 {
		errs = append(errs, fmt.Errorf("--store.max-series must not be negative, got %d", c.MaxSeries))
	}
	for name, typ := range c.Reserved {
		if !model.LegacyValidation.IsValidMetricName(name) {
			errs = append(errs, fmt.Errorf("reserved family name %q is not a valid metric name", name))
		}
		if _, ok := dto.MetricType_name[int32(typ)]; !ok {
			errs = append(errs, fmt.Errorf("reserved family %q has unknown type %d", name, typ))
		}
	}
	return errors.Join(errs...)
}

// ReservedFamilies gathers g once and returns the names and types of its
// families, for Config.Reserved. Families without series at the time of the
// call are included as well, as long as g reports them.
func ReservedFamilies(g prometheus.Gatherer) (map[string]dto.MetricType, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather own families: %w", err)
	}
	m := make(map[string]dto.MetricType, len(mfs))
	for _, mf := range mfs {
		m[mf.GetName()] = mf.GetType()
	}
	return m, nil
}

// isOwnName reports whether name is reserved for the gateway's own metrics.
func isOwnName(name string) bool { return strings.HasPrefix(name, ownPrefix) }
