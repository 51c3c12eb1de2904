package shard

import (
	"bytes"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// node is a copy of what a memberlist node says about a peer, taken while
// memberlist holds its node lock. memberlist updates its Node values in
// place (a peer that restarts under its name with a new address, new
// metadata), so the pointers Memberlist.Members returns must not be read
// after it returned; every read of the member list goes through these
// copies instead.
type node struct {
	name string
	addr string // host:port of its gossip
	meta []byte
}

// eventDelegate is the memberlist.EventDelegate of a peer. memberlist calls
// it while holding its node lock, so it must not block or call back into
// memberlist: it copies the node, counts the event and pokes the membership
// worker, which rebuilds the placement from the copies.
//
// The poke channel has room for one pending poke. A poke that finds it full
// is dropped on purpose: the pending one already makes the worker read the
// whole member list, which includes this event, so nothing is lost and
// memberlist never waits.
type eventDelegate struct {
	poke    chan<- struct{}
	changes *prometheus.CounterVec

	mu    sync.Mutex
	nodes map[string]node // live members by name, this peer included
}

// NotifyJoin records that a node joined.
func (d *eventDelegate) NotifyJoin(n *memberlist.Node) {
	d.record(n)
	d.notify(eventJoin)
}

// NotifyLeave records that a node left or died.
func (d *eventDelegate) NotifyLeave(n *memberlist.Node) {
	d.mu.Lock()
	delete(d.nodes, n.Name)
	d.mu.Unlock()
	d.notify(eventLeave)
}

// NotifyUpdate records that a node changed its metadata or address.
func (d *eventDelegate) NotifyUpdate(n *memberlist.Node) {
	d.record(n)
	d.notify(eventUpdate)
}

func (d *eventDelegate) record(n *memberlist.Node) {
	c := node{name: n.Name, addr: n.Address(), meta: bytes.Clone(n.Meta)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nodes == nil {
		d.nodes = map[string]node{}
	}
	d.nodes[n.Name] = c
}

// members returns the live members, sorted by name. The slice is new; the
// metadata bytes are shared and never modified.
func (d *eventDelegate) members() []node {
	d.mu.Lock()
	out := make([]node, 0, len(d.nodes))
	for _, n := range d.nodes {
		out = append(out, n)
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b node) int { return strings.Compare(a.name, b.name) })
	return out
}

func (d *eventDelegate) notify(event string) {
	d.changes.WithLabelValues(event).Inc()
	select {
	case d.poke <- struct{}{}:
	default:
	}
}
