package shard

import (
	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// eventDelegate is the memberlist.EventDelegate of a peer. memberlist calls
// it while holding its node lock, so it must not block or call back into
// memberlist: it counts the event and pokes the membership worker, which
// rebuilds the placement from memberlist's member list.
//
// The poke channel has room for one pending poke. A poke that finds it full
// is dropped on purpose: the pending one already makes the worker read the
// whole member list, which includes this event, so nothing is lost and
// memberlist never waits.
type eventDelegate struct {
	poke    chan<- struct{}
	changes *prometheus.CounterVec
}

// NotifyJoin records that a node joined.
func (d *eventDelegate) NotifyJoin(*memberlist.Node) { d.notify(eventJoin) }

// NotifyLeave records that a node left or died.
func (d *eventDelegate) NotifyLeave(*memberlist.Node) { d.notify(eventLeave) }

// NotifyUpdate records that a node changed its metadata or address.
func (d *eventDelegate) NotifyUpdate(*memberlist.Node) { d.notify(eventUpdate) }

func (d *eventDelegate) notify(event string) {
	d.changes.WithLabelValues(event).Inc()
	select {
	case d.poke <- struct{}{}:
	default:
	}
}
