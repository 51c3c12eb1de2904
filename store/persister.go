package store

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// DefaultPersistInterval is the default of -persistence.interval. It is the
// Pushgateway's default, so a migrated peer writes its disk as often as the
// gateway it replaces; the shutdown persist covers a clean restart whatever
// the interval.
const DefaultPersistInterval = 5 * time.Minute

// PersistConfig configures persistence of a peer's groups to a local file.
type PersistConfig struct {
	// File is the persistence file. Empty keeps groups in memory only.
	File string
	// Interval is the shortest time between two writes of File. Zero
	// writes after every change, as soon as the previous write is done.
	Interval time.Duration
}

// RegisterFlags registers the persistence flags under the Pushgateway's names.
func (c *PersistConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.File, "persistence.file", "",
		"File to save the pushed groups in and to load them from at start-up. Written atomically; a file that cannot be read is renamed aside. Empty: keep groups in memory only.")
	fs.DurationVar(&c.Interval, "persistence.interval", DefaultPersistInterval,
		"Shortest time between two writes of the persistence file after the groups changed. The file is always written once more at shutdown.")
}

// Validate checks the configuration without touching the file system.
func (c PersistConfig) Validate() error {
	if c.Interval < 0 {
		return fmt.Errorf("--persistence.interval must not be negative, got %s", c.Interval)
	}
	if c.File != "" && os.IsPathSeparator(c.File[len(c.File)-1]) {
		return fmt.Errorf("persistence.file %q names a directory; give a file name", c.File)
	}
	return nil
}

// persistSource is what persistence needs of a store; *Store satisfies it.
// WriteFile writes the persistence file from the current content (see
// Store.WriteFile); Changed returns the same channel on every call,
// signalled (buffer 1, non-blocking send) after each change becomes visible
// to WriteFile; Restore inserts groups and reports the ones it
// rejected in an errors.Join. All three may be called from any goroutine.
type persistSource interface {
	WriteFile(path string) error
	Changed() <-chan struct{}
	Restore(groups []GroupSnapshot) error
}

// Persister loads a peer's groups from the persistence file at start-up and
// writes them back while the peer runs and once more at shutdown.
type Persister struct {
	cfg     PersistConfig
	src     persistSource
	logger  *slog.Logger
	metrics *persistMetrics
}

// NewPersister returns a Persister for st. It checks that the directory of
// cfg.File exists, because a missing directory would otherwise only show up
// as a failing write minutes later.
func NewPersister(cfg PersistConfig, st *Store, logger *slog.Logger, reg prometheus.Registerer) (*Persister, error) {
	return newPersister(cfg, st, logger, reg)
}

func newPersister(cfg PersistConfig, src persistSource, logger *slog.Logger, reg prometheus.Registerer) (*Persister, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkPersistDir(cfg.File); err != nil {
		return nil, err
	}
	return &Persister{cfg: cfg, src: src, logger: logger, metrics: newPersistMetrics(reg)}, nil
}

func checkPersistDir(file string) error {
	if file == "" {
		return nil
	}
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("persistence.file: directory of %q: %w", file, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("persistence.file: %q is not a directory", dir)
	}
	return nil
}

// Load restores the persistence file into the store and returns how many
// groups it restored. Call it once, before Run and before the peer takes
// pushes. A missing file, or no file configured, restores nothing.
//
// A file that cannot be decoded is logged, renamed to
// <file>.corrupt-<unix seconds> (never overwriting an earlier one) and the
// store starts empty: the Pushgateway would overwrite such a file at its next
// write. Malformed groups, and groups the store rejects as inconsistent, are
// logged, counted in pushring_persistence_groups_dropped_total and skipped;
// so are groups beyond the store's limits (reason "limit"), and groups whose
// TTL deadline passed while the peer was down are counted as expired by the
// store. The other groups load.
//
// Load returns an error only when the file could not be read at all (for
// example permissions) or a corrupt file could not be moved aside; starting
// then would risk overwriting data, so the caller should stop.
func (p *Persister) Load() (int, error) {
	if p.cfg.File == "" {
		return 0, nil
	}
	p.removeStaleTemps()
	groups, err := ReadFile(p.cfg.File)
	switch {
	case errors.Is(err, ErrCorrupt):
		return 0, p.quarantine(err)
	case err != nil && !errors.Is(err, ErrInvalidGroup):
		return 0, fmt.Errorf("load persisted metrics: %w", err)
	case err != nil:
		p.dropGroups(err, func(error) string { return "invalid" })
	}
	loaded := len(groups)
	if err := p.src.Restore(groups); err != nil {
		loaded -= p.dropGroups(err, restoreDropReason)
	}
	p.logger.Info("persisted metrics loaded", "file", p.cfg.File, "groups", loaded)
	return loaded, nil
}

// dropGroups logs and counts the groups reported in err, an errors.Join of
// one error per group, each under reasonOf(its error), and returns how many
// there were.
func (p *Persister) dropGroups(err error, reasonOf func(error) string) int {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		reason := reasonOf(e)
		p.logger.Error("dropped a persisted group", "file", p.cfg.File, "reason", reason, "err", e)
		p.metrics.dropped.WithLabelValues(reason).Inc()
	}
	return len(errs)
}

// restoreDropReason classifies an error of Store.Restore for one group.
func restoreDropReason(err error) string {
	if errors.Is(err, ErrLimit) {
		return "limit"
	}
	return "inconsistent"
}

// quarantine moves a corrupt persistence file out of the way so that the
// next write cannot destroy what an operator may still want to recover.
func (p *Persister) quarantine(cause error) error {
	p.logger.Error("could not load persisted metrics", "file", p.cfg.File, "err", cause)
	aside, err := moveAside(p.cfg.File, time.Now())
	if err != nil {
		return fmt.Errorf("move corrupt persistence file aside: %w", err)
	}
	p.logger.Error("moved the corrupt persistence file aside, starting empty", "file", p.cfg.File, "moved_to", aside)
	return nil
}

// moveAside renames file to file.corrupt-<unix seconds>, adding -1, -2, …
// when that name is taken. Only this process writes next to its persistence
// file while it starts, so checking before renaming is enough.
func moveAside(file string, now time.Time) (string, error) {
	base := file + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
	for i := 0; i < 1000; i++ {
		aside := base
		if i > 0 {
			aside += "-" + strconv.Itoa(i)
		}
		if _, err := os.Lstat(aside); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.Rename(file, aside); err != nil {
			return "", err
		}
		return aside, nil
	}
	return "", fmt.Errorf("no free name of the form %s-N", base)
}

// Run writes the persistence file while ctx lives and once more when it is
// done, then returns the error of that last write. The caller owns the
// goroutine that calls Run; Run starts none.
//
// After a change, the next write happens Interval after the start of the
// previous one (or after Run started), or at once if that time has passed.
// Without changes nothing is written until shutdown. A failed write is logged
// and counted; the next change schedules the next attempt. With no file
// configured Run only waits for ctx.
func (p *Persister) Run(ctx context.Context) error {
	if p.cfg.File == "" {
		<-ctx.Done()
		return nil
	}
	var (
		lastStart = time.Now()
		timer     *time.Timer
		due       <-chan time.Time // nil while no write is scheduled
		changed   = p.src.Changed()
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return p.persistFinal()
		case <-changed:
			if due == nil {
				timer = time.NewTimer(time.Until(lastStart.Add(p.cfg.Interval)))
				due = timer.C
			}
		case <-due:
			due = nil
			var ok bool
			if lastStart, ok = p.persistTimed(); !ok {
				// The changes are not on disk and their signal is spent:
				// try again after the interval even if nothing else
				// changes (a full disk may clear), at most once a second.
				timer = time.NewTimer(max(p.cfg.Interval, minRetry))
				due = timer.C
			}
		}
	}
}

// minRetry bounds how often a failing write is retried when
// --persistence.interval is 0.
const minRetry = time.Second

// persistTimed writes the file and logs the outcome. It returns when the
// write started, which paces the next one, and whether it succeeded.
func (p *Persister) persistTimed() (time.Time, bool) {
	start := time.Now()
	if err := p.persist(); err != nil {
		p.logger.Error("error persisting metrics", "file", p.cfg.File, "err", err)
		return start, false
	}
	p.logger.Info("metrics persisted", "file", p.cfg.File, "duration", time.Since(start))
	return start, true
}

func (p *Persister) persistFinal() error {
	if err := p.persist(); err != nil {
		return fmt.Errorf("persist metrics at shutdown: %w", err)
	}
	p.logger.Info("metrics persisted at shutdown", "file", p.cfg.File)
	return nil
}

// persist writes the file once. A pending change signal is consumed first:
// every change it stands for is visible to the write that follows, and a
// change made after that signals again.
func (p *Persister) persist() error {
	select {
	case <-p.src.Changed():
	default:
	}
	start := time.Now()
	err := p.src.WriteFile(p.cfg.File)
	p.metrics.observe(time.Since(start), err)
	return err
}

// persistMetrics are the self-metrics of persistence.
type persistMetrics struct {
	writes      *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	duration    prometheus.Histogram
	dropped     *prometheus.CounterVec
}

func newPersistMetrics(reg prometheus.Registerer) *persistMetrics {
	f := promauto.With(reg)
	m := &persistMetrics{
		writes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_persistence_writes_total",
			Help: "Writes of the persistence file, by result (success or error).",
		}, []string{"result"}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_persistence_last_success_timestamp_seconds",
			Help: "Unix time at which the persistence file was last written successfully.",
		}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "pushring_persistence_write_duration_seconds",
			Help:    "Time to write the persistence file, streamed from the store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), // 1ms … 65s
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_persistence_groups_dropped_total",
			Help: "Groups of the persistence file not loaded at start-up, by reason (invalid: malformed in the file; inconsistent: rejected by the store; limit: beyond --store.max-groups or --store.max-series).",
		}, []string{"reason"}),
	}
	m.writes.WithLabelValues("success")
	m.writes.WithLabelValues("error")
	m.dropped.WithLabelValues("invalid")
	m.dropped.WithLabelValues("inconsistent")
	m.dropped.WithLabelValues("limit")
	return m
}

func (m *persistMetrics) observe(d time.Duration, err error) {
	m.duration.Observe(d.Seconds())
	if err != nil {
		m.writes.WithLabelValues("error").Inc()
		return
	}
	m.writes.WithLabelValues("success").Inc()
	m.lastSuccess.SetToCurrentTime()
}

// removeStaleTemps removes the temporary files of writes that a crash or a
// kill interrupted: ours (<file>.in_progress.<random>) and the
// Pushgateway's (<file>.in_progress). Nothing else writes them, and before
// Load no write of this process has started. A file that cannot be removed
// is logged and left.
func (p *Persister) removeStaleTemps() {
	base := filepath.Base(p.cfg.File)
	dir := filepath.Dir(p.cfg.File)
	matches, _ := filepath.Glob(filepath.Join(dir, globEscape(base)+".in_progress*")) // the pattern is valid
	removed := 0
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), base+".in_progress")
		if rest != "" && !strings.HasPrefix(rest, ".") {
			continue // another file's name that merely starts the same
		}
		if err := os.Remove(m); err != nil {
			p.logger.Warn("stale temporary persistence file not removed", "file", m, "err", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		p.logger.Info("removed temporary persistence files of interrupted writes", "dir", dir, "files", removed)
	}
}

// globEscape quotes the characters filepath.Match treats as special.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
