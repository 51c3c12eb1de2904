package shard

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Values of the event label: the memberlist notifications.
const (
	eventJoin   = "join"
	eventLeave  = "leave"
	eventUpdate = "update"
)

// Values of the result label of re-joins.
const (
	resultSuccess = "success"
	resultFailure = "failure"
	// resultSkipped: every seed address was already a live member.
	resultSkipped = "skipped"
)

// metrics are the membership's self-metrics. Labels come from the fixed
// sets above; never from a peer name or address.
type metrics struct {
	members prometheus.Gauge
	changes *prometheus.CounterVec
	rejoins *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		members: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_cluster_members",
			Help: "Members of the cluster in this peer's placement, itself included.",
		}),
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_cluster_membership_changes_total",
			Help: "Membership notifications from memberlist, by event (join, leave, update).",
		}, []string{"event"}),
		rejoins: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_cluster_rejoins_total",
			Help: "Periodic re-joins of the seed peers, by result: success, failure (no seed resolved, or none could be joined), skipped (every seed address was already a live member).",
		}, []string{"result"}),
	}
	for _, e := range []string{eventJoin, eventLeave, eventUpdate} {
		m.changes.WithLabelValues(e)
	}
	for _, r := range []string{resultSuccess, resultFailure, resultSkipped} {
		m.rejoins.WithLabelValues(r)
	}
	return m
}
