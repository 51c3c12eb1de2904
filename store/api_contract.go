package store

// CONTRACT FILE (temporary): exported surface of package store that the other
// packages program against. The store helper replaces these stubs with the
// real implementation spread over store.go, apply.go, check.go, render.go,
// expose.go, snapshot.go and deletes this file.

import (
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Names of the two gauges the gateway keeps in every group.
const (
	PushTimeName        = "push_time_seconds"
	PushFailureTimeName = "push_failure_time_seconds"
)

// ErrInconsistent wraps every rejection of a push by the consistency check.
// Its text is the Pushgateway's prefix; the detail follows after ": ".
var ErrInconsistent = errors.New("pushed metrics are invalid or inconsistent with existing metrics")

// Config configures a Store.
type Config struct{}

// Store holds every group of this peer.
type Store struct{}

// New returns an empty store.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) { panic("todo") }

// Push is one write to a group. Families are already sanitised by ingest:
// every grouping label forced onto every metric, instance="" added where
// missing, label pairs sorted by name. The store takes ownership of them.
type Push struct {
	Key      GroupKey
	Replace  bool // PUT: replace the group's families; POST: replace same-named families
	Families map[string]*dto.MetricFamily
	Time     time.Time
}

// Apply checks p against the whole store in O(size of p) and applies it
// atomically. A rejected push records p.Time as the group's failure time
// (creating the group only if that keeps the store consistent) and returns an
// error wrapping ErrInconsistent; nothing else changes.
func (s *Store) Apply(p Push) error { panic("todo") }

// Delete removes a group. It reports whether the group existed.
func (s *Store) Delete(k GroupKey) bool { panic("todo") }

// Wipe removes every group and returns how many there were.
func (s *Store) Wipe() int { panic("todo") }

// Format is an exposition format.
type Format int

// Exposition formats.
const (
	FormatText        Format = iota // text/plain; version=0.0.4
	FormatProtoDelim                // delimited protobuf
	FormatOpenMetrics               // OpenMetrics 1.0.0
)

// WriteExposition writes every group's families merged by family name (sorted)
// together with extra (the gateway's own families, already gathered) in f.
// It holds the store lock only to copy out references to pre-rendered bytes.
func (s *Store) WriteExposition(w io.Writer, f Format, extra []*dto.MetricFamily) error {
	panic("todo")
}

// FamilySnapshot is one family of a group and the time of the push that last
// wrote it.
type FamilySnapshot struct {
	Family *dto.MetricFamily
	Time   time.Time
}

// GroupSnapshot is a deep copy of one group: the caller owns it.
type GroupSnapshot struct {
	Key      GroupKey
	Families []FamilySnapshot // sorted by name; includes push_time_seconds and push_failure_time_seconds
	Version  uint64
}

// LastPushSuccessful reports push_failure_time_seconds <= push_time_seconds
// (true when either is missing), as the Pushgateway's JSON API does.
func (g GroupSnapshot) LastPushSuccessful() bool { panic("todo") }

// Snapshot returns a deep copy of every group, sorted by key.
func (s *Store) Snapshot() []GroupSnapshot { panic("todo") }

// Restore inserts groups as they are (persistence load, later hand-off). A
// group that would make the store inconsistent is skipped and reported in the
// returned error (errors.Join); the others are inserted.
func (s *Store) Restore(groups []GroupSnapshot) error { panic("todo") }

// Stats returns the number of groups and of stored series.
func (s *Store) Stats() (groups, series int) { panic("todo") }

// Changed returns a channel that receives a value (non-blocking send, buffer
// 1) after every change of the store. Persistence waits on it.
func (s *Store) Changed() <-chan struct{} { panic("todo") }
