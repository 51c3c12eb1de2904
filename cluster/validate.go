package cluster

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// A group another peer hands over is checked as a push is before it is
// stored: a peer is not trusted blindly, whether it is compromised, runs
// another configuration or a bug, or is not a peer at all on an open peer
// plane. Forwarded pushes need no check of their own: the owner parses
// and applies them through the ingester exactly as an HTTP push, with
// every limit of a push, and the gRPC server reads no message larger than
// what --push.max-body-bytes allows (peerplane.go).

// maxVersionAhead bounds how far a version received from another peer may
// be ahead of this peer's clock. Versions are the writer's clock in Unix
// nanoseconds, and peers' clocks agree within milliseconds under NTP; a
// version far ahead would win over every real write for that long, and
// one near 2^64 would wrap this peer's version counter.
const maxVersionAhead = time.Minute

// Reasons a received group is refused, the reason label of
// pushring_peer_received_rejected_total.
const (
	reasonVersionAhead  = "version_ahead"
	reasonForeignLabels = "foreign_labels"
	reasonInvalidName   = "invalid_name"
	reasonOverLimit     = "limit"
	reasonUndecodable   = "undecodable"
)

// ReceiveLimits are the push limits a received group must keep: the
// --push.max-* flags of the ingester. A zero field is no limit.
type ReceiveLimits struct {
	// MaxLabelsPerSeries is --push.max-labels-per-series.
	MaxLabelsPerSeries int
	// MaxLabelNameLength is --push.max-label-name-length.
	MaxLabelNameLength int
	// MaxLabelValueLength is --push.max-label-value-length.
	MaxLabelValueLength int
	// MaxMetricNameLength is --push.max-metric-name-length.
	MaxMetricNameLength int
}

// receiveChecks checks what other peers send and counts what it refuses.
type receiveChecks struct {
	limits   ReceiveLimits
	now      func() time.Time
	rejected *prometheus.CounterVec
}

func newReceiveChecks(l ReceiveLimits, reg prometheus.Registerer) *receiveChecks {
	r := &receiveChecks{limits: l, now: time.Now, rejected: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "pushring_peer_received_rejected_total",
		Help: "Groups and deletes handed over by another peer that this peer refused before storing them, by reason (version_ahead: a version more than a minute ahead of this peer's clock; foreign_labels: a series without the group's grouping labels; invalid_name: an empty or non-UTF-8 name; limit: over a --push.max-* limit; undecodable: not a group).",
	}, []string{"reason"})}
	for _, reason := range []string{reasonVersionAhead, reasonForeignLabels, reasonInvalidName, reasonOverLimit, reasonUndecodable} {
		r.rejected.WithLabelValues(reason)
	}
	return r
}

// rejectError is a refused group with its reason.
type rejectError struct {
	reason string
	msg    string
}

func (e *rejectError) Error() string { return e.msg }

func reject(reason, format string, args ...any) error {
	return &rejectError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// count counts err under its reason and returns it.
func (r *receiveChecks) count(err error) error {
	var re *rejectError
	if errors.As(err, &re) {
		r.rejected.WithLabelValues(re.reason).Inc()
	} else {
		r.rejected.WithLabelValues(reasonUndecodable).Inc()
	}
	return err
}

// checkReceived decodes a group another peer handed over and checks it.
func (c *Cluster) checkReceived(g *peerpb.Group) (store.GroupSnapshot, error) {
	gs, err := groupFromPB(g)
	if err != nil {
		return gs, c.checks.count(err)
	}
	return gs, c.checks.check(gs, g.GetDeleted())
}

// check returns why a received group (or, with deleted, a delete) must
// not be stored, counted, or nil.
func (r *receiveChecks) check(gs store.GroupSnapshot, deleted bool) error {
	if err := r.checkVersion(gs.Version); err != nil {
		return r.count(err)
	}
	if deleted {
		return nil
	}
	if err := r.checkGroup(gs); err != nil {
		return r.count(err)
	}
	return nil
}

func (r *receiveChecks) checkVersion(v uint64) error {
	bound := uint64(max(r.now().Add(maxVersionAhead).UnixNano(), 0))
	if v > bound {
		return reject(reasonVersionAhead, "version %d is more than %s ahead of this peer's clock", v, maxVersionAhead)
	}
	return nil
}

// checkGroup checks the names, the limits and that every series carries
// the group's grouping labels (instance only when the key has one: a
// series of a group without it may carry its own).
func (r *receiveChecks) checkGroup(gs store.GroupSnapshot) error {
	key := gs.Key.Labels()
	if job, ok := gs.Key.Get("job"); !ok || job == "" {
		return reject(reasonForeignLabels, "grouping key without a job")
	}
	for _, l := range key {
		if err := r.checkLabel("grouping key", l.Name, l.Value); err != nil {
			return err
		}
	}
	for _, f := range gs.Families {
		if err := r.checkFamily(f.Family, key); err != nil {
			return err
		}
	}
	return nil
}

func (r *receiveChecks) checkFamily(mf *dto.MetricFamily, key []store.Label) error {
	name := mf.GetName()
	if name == "" || !utf8.ValidString(name) {
		return reject(reasonInvalidName, "metric name %q is empty or not UTF-8", name)
	}
	if l := r.limits.MaxMetricNameLength; l > 0 && len(name) > l {
		return reject(reasonOverLimit, "metric name of %d bytes, more than --push.max-metric-name-length %d", len(name), l)
	}
	for _, m := range mf.GetMetric() {
		if l := r.limits.MaxLabelsPerSeries; l > 0 && len(m.GetLabel()) > l {
			return reject(reasonOverLimit, "a series of %q has %d label pairs, more than --push.max-labels-per-series %d", name, len(m.GetLabel()), l)
		}
		for _, lp := range m.GetLabel() {
			if err := r.checkLabel("metric "+name, lp.GetName(), lp.GetValue()); err != nil {
				return err
			}
		}
		if err := carriesKey(name, m, key); err != nil {
			return err
		}
	}
	return nil
}

func (r *receiveChecks) checkLabel(where, name, value string) error {
	switch {
	case name == "" || !utf8.ValidString(name) || !utf8.ValidString(value):
		return reject(reasonInvalidName, "%s: label %q is empty or not UTF-8", where, name)
	case r.limits.MaxLabelNameLength > 0 && len(name) > r.limits.MaxLabelNameLength:
		return reject(reasonOverLimit, "%s: a label name of %d bytes, more than --push.max-label-name-length %d", where, len(name), r.limits.MaxLabelNameLength)
	case r.limits.MaxLabelValueLength > 0 && len(value) > r.limits.MaxLabelValueLength:
		return reject(reasonOverLimit, "%s: a label value of %d bytes, more than --push.max-label-value-length %d", where, len(value), r.limits.MaxLabelValueLength)
	}
	return nil
}

// carriesKey checks that series m of family name carries every grouping
// label with the group's value: the ingester forces them onto every series
// of a push, instance included when the key has one.
func carriesKey(name string, m *dto.Metric, key []store.Label) error {
	for _, k := range key {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k.Name {
				if lp.GetValue() != k.Value {
					return reject(reasonForeignLabels, "a series of %q has %s=%q, not the group's %q", name, k.Name, lp.GetValue(), k.Value)
				}
				found = true
				break
			}
		}
		if !found {
			return reject(reasonForeignLabels, "a series of %q lacks the grouping label %s", name, k.Name)
		}
	}
	return nil
}
