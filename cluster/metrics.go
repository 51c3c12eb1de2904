package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Values of the result labels of the forwarding and hand-off metrics.
const (
	forwardOK          = "ok"
	forwardRefused     = "refused"
	forwardUnavailable = "unavailable"

	handOffSent     = "sent"
	handOffKept     = "kept"
	handOffRejected = "rejected"
	handOffFailed   = "failed"
	handOffDropped  = "dropped"

	resultOK       = "ok"
	resultFailed   = "failed"
	resultRejected = "rejected"
)

// metrics are the cluster's self-metrics (the membership's are shard's).
// Their labels come from the fixed sets above; never from a peer name.
type metrics struct {
	forwarded      *prometheus.CounterVec
	forwardSeconds prometheus.Histogram
	handOffGroups  *prometheus.CounterVec
	handOffBatches *prometheus.CounterVec
	handOffPending prometheus.Gauge

	replicaWrites   *prometheus.CounterVec
	repairGroups    *prometheus.CounterVec
	repairPasses    *prometheus.CounterVec
	pulledGroups    prometheus.Counter
	underReplicated prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		forwarded: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_forwarded_pushes_total",
			Help: "Pushes and deletes forwarded to the peer that owns their group, by result (ok: the owner applied it; refused: the owner answered with an error, counted under its reason there; unavailable: no answer, 503 here).",
		}, []string{"result"}),
		forwardSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "pushring_forward_duration_seconds",
			Help:    "Time to forward a push to its owner and get its answer, in seconds.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		handOffGroups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_handoff_groups_total",
			Help: "Groups this peer handed to their new owner, by result (sent: the owner has it, or a newer write of it, and it left this peer; kept: a write came in meanwhile, it stays until the next pass; rejected: the owner refused it, by its limits or consistency check, and it stays here; failed: the batch did not get through, it stays here; dropped: the peer stopped without a persistence file and no other peer took it).",
		}, []string{"result"}),
		handOffBatches: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pushring_handoff_batches_total",
			Help: "Hand-off batches sent to new owners, by result (ok or failed).",
		}, []string{"result"}),
		handOffPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "pushring_handoff_pending_groups",
			Help: "Groups this peer holds but does not own, as of the last hand-off pass: they wait to be handed to their owner.",
		}),
	}
	for _, r := range []string{handOffSent, handOffKept, handOffRejected, handOffFailed, handOffDropped} {
		m.handOffGroups.WithLabelValues(r)
	}
	for _, r := range []string{forwardOK, forwardRefused, forwardUnavailable} {
		m.forwarded.WithLabelValues(r)
	}
	m.replicaWrites = f.NewCounterVec(prometheus.CounterOpts{
		Name: "pushring_replica_writes_total",
		Help: "Copies of a pushed group's new state sent to its other owners, by result (ok; rejected: the owner refused it by its limits; failed: no answer within --cluster.replication-timeout, or the owner is passed over). A copy that did not land leaves the group under-replicated until repair.",
	}, []string{"result"})
	m.repairGroups = f.NewCounterVec(prometheus.CounterOpts{
		Name: "pushring_repair_groups_total",
		Help: "Groups and deletes repair copied to another owner that lacked them or held an older version, by reason (missing, older) and result (ok, rejected, failed).",
	}, []string{"reason", "result"})
	m.repairPasses = f.NewCounterVec(prometheus.CounterOpts{
		Name: "pushring_repair_passes_total",
		Help: "Repair passes, by result (ok: every other owner answered; failed: at least one did not).",
	}, []string{"result"})
	m.pulledGroups = f.NewCounter(prometheus.CounterOpts{
		Name: "pushring_join_pulled_groups_total",
		Help: "Groups and deletes this peer took from the other peers while it joined, before it served.",
	})
	for _, r := range []string{resultOK, resultRejected, resultFailed} {
		m.replicaWrites.WithLabelValues(r)
		for _, reason := range []string{repairMissing, repairOlder} {
			m.repairGroups.WithLabelValues(reason, r)
		}
	}
	m.repairPasses.WithLabelValues(resultOK)
	m.repairPasses.WithLabelValues(resultFailed)
	m.underReplicated = f.NewGauge(prometheus.GaugeOpts{
		Name: "pushring_cluster_under_replicated_groups",
		Help: "Groups this peer owns whose copy on another owner is missing or older: as found by the last repair pass, plus the copies that failed since.",
	})
	m.handOffBatches.WithLabelValues(resultOK)
	m.handOffBatches.WithLabelValues(resultFailed)
	return m
}
