package store

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Names of the two gauges the gateway keeps in every group.
const (
	PushTimeName        = "push_time_seconds"
	PushFailureTimeName = "push_failure_time_seconds"
)

// Help texts of the two gauges, the Pushgateway's.
const (
	pushTimeHelp        = "Last Unix time when changing this group in the Pushgateway succeeded."
	pushFailureTimeHelp = "Last Unix time when changing this group in the Pushgateway failed."
)

// Store holds every group of this peer. It is safe for concurrent use.
//
// One mutex guards everything. The consistency check is global by nature
// (a series, a family type or a suffix may clash with any other group), and
// everything expensive (validating, rendering, encoding, hashing, and for a
// scrape writing the bytes) happens outside the lock, so the critical
// section of a write is O(size of the write) map operations and that of a
// scrape copies pointers. Striping would buy little and make the
// cross-group check need several locks.
type Store struct {
	cfg        Config
	clock      Clock
	logger     *slog.Logger
	metrics    *metrics
	changed    chan struct{}
	expiryWake chan struct{}              // buffer 1: a write set the earliest deadline; RunExpiry re-arms
	builders   sync.Pool                  // of *builder
	gzips      sync.Pool                  // of *gzipStream
	views      sync.Pool                  // of *view
	gzBuild    sync.Mutex                 // held by the gzipped scrape that builds the next chunk table
	gzChunks   atomic.Pointer[chunkTable] // the compressed chunks of the last gzipped scrape (gzip.go)
	cache      renderCache                // renderings scrapes keep on families
	// counted is countedGroups as of the last change (changedLocked),
	// read without the lock by refuseNewGroupEarly.
	counted atomic.Int64

	mu     sync.Mutex
	groups map[GroupKey]*group
	names  map[string]*nameEntry
	// escapedNames maps the escaped forms (guardedSchemes) of every family
	// name that is not a legacy name to that name; the check keeps the
	// forms of one scheme distinct from each other and from every legacy
	// family name.
	escapedNames map[escapedKey]string
	sortedNames  []string // names in byte order; never mutated, replaced when namesDirty
	namesDirty   bool
	series       seriesIndex
	nSeries      int
	nBytes       int64 // text bytes (family.textSize) of every family; --store.max-bytes
	nFamilies    int   // (group, family) pairs
	// nFailureOnly counts the groups with failureOnly set.
	nFailureOnly int
	version      uint64      // last version handed to a group
	expiries     expiryQueue // groups with a deadline, earliest first
	tombs        tombstones  // versions of recently deleted groups; see Receive
	exposure     exposureBox // which groups a scrape shows; see SetExposure
}

// New returns an empty store.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = RealClock{}
	}
	s := &Store{
		cfg:        cfg,
		clock:      clock,
		logger:     logger,
		metrics:    newMetrics(reg),
		changed:    make(chan struct{}, 1),
		expiryWake: make(chan struct{}, 1),
	}
	s.builders.New = func() any { return newBuilder() }
	s.cache.limit = cfg.MaxRenderCacheBytes
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushring_store_render_cache_bytes",
		Help: "Bytes of protobuf and OpenMetrics renderings and gzipped text chunks kept for the next scrape in that format (bounded by --store.max-render-cache-bytes).",
	}, func() float64 { return float64(s.cache.bytes()) })
	s.reset()
	return s, nil
}

// reset empties the store. The caller holds s.mu (or owns s).
func (s *Store) reset() {
	s.groups = map[GroupKey]*group{}
	s.names = map[string]*nameEntry{}
	s.escapedNames = map[escapedKey]string{}
	s.sortedNames = nil
	s.namesDirty = false
	s.series = newSeriesIndex()
	s.nSeries = 0
	s.nBytes = 0
	s.nFamilies = 0
	s.nFailureOnly = 0
	s.expiries = nil
}

// Delete removes a group. It reports whether the group existed. With
// Config.TombstoneTTL it remembers the delete, existing group or not: the
// group may still be on its way from a previous owner (Receive).
func (s *Store) Delete(k GroupKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteLocked(k, s.nextVersion())
}

// deleteLocked records a delete of k at version v (a tombstone, with
// Config.TombstoneTTL) and removes the group if there is one, reporting
// whether there was. The caller holds s.mu.
func (s *Store) deleteLocked(k GroupKey, v uint64) bool {
	s.tombs.add(k, v, s.clock.Now(), s.cfg.TombstoneTTL, s.cfg.MaxGroups)
	g := s.groups[k]
	if g == nil {
		return false
	}
	s.removeGroupLocked(g)
	s.changedLocked()
	return true
}

// removeGroupLocked removes g from the store and every index. Delete and
// expiry both remove groups this way. The caller holds s.mu and signals
// Changed.
func (s *Store) removeGroupLocked(g *group) {
	for _, sl := range g.slots {
		s.dropSlot(g, sl)
	}
	g.slots = nil
	s.expiries.remove(g)
	s.series.unregister(g)
	delete(s.groups, g.key)
	if g.failureOnly {
		s.nFailureOnly--
	}
}

// Wipe removes every group and returns how many there were.
func (s *Store) Wipe() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.groups)
	if n == 0 {
		return 0
	}
	for _, g := range s.groups {
		for _, sl := range g.slots {
			s.cache.release(sl.fam)
		}
	}
	s.reset()
	s.changedLocked()
	return n
}

// Stats returns the number of groups and of stored series, counted as
// Prometheus counts them: every sample line of the exposition (a histogram's
// buckets, _sum and _count each), the two push-time gauges included.
func (s *Store) Stats() (groups, series int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.groups), s.nSeries
}

// Changed returns a channel that receives a value (non-blocking send,
// buffer 1) after every change of the store, once the change is visible to
// Snapshot. It is the same channel on every call. Persistence waits on it.
func (s *Store) Changed() <-chan struct{} { return s.changed }

// changedLocked publishes the size gauges and signals Changed. The caller
// holds s.mu, so the gauges move in the order of the changes.
func (s *Store) changedLocked() {
	s.counted.Store(int64(s.countedGroups()))
	s.metrics.groups.Set(float64(len(s.groups)))
	s.metrics.series.Set(float64(s.nSeries))
	s.metrics.sampleBytes.Set(float64(s.nBytes))
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// sortedNamesLocked returns the family names in byte order. The slice is
// shared and never mutated. The caller holds s.mu.
func (s *Store) sortedNamesLocked() []string {
	if s.namesDirty {
		names := make([]string, 0, len(s.names))
		for n := range s.names {
			names = append(names, n)
		}
		slices.Sort(names)
		s.sortedNames = names
		s.namesDirty = false
	}
	return s.sortedNames
}

// nextVersion returns a new group version: the clock's Unix nanoseconds, or
// one more than the last version if that is higher. Versions order the
// writes of a group across peers (hand-off keeps the higher one), so they
// follow wall time: a push to a group's new owner is newer than the copy
// its old owner still holds, as long as the peers' clocks agree to within
// the time between two pushes of the group. The caller holds s.mu.
func (s *Store) nextVersion() uint64 {
	s.version = max(s.version+1, uint64(max(s.clock.Now().UnixNano(), 0)))
	return s.version
}

// formatKey renders a key for messages and logs as {name="value",...}; the
// encoded key holds 0xFF separators.
func formatKey(k GroupKey) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range k.Labels() {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	b.WriteByte('}')
	return b.String()
}
