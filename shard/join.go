package shard

import (
	"context"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// Backoff of the joins at start. A seed that is not listening yet refuses
// a connection at once, so trying again soon costs nothing; peers started
// together (a StatefulSet with parallel pod management) find each other
// on the first retries. The cap keeps a peer whose seeds are down from
// spinning until --cluster.join-timeout.
const (
	joinBackoffMin = 100 * time.Millisecond
	joinBackoffMax = 2 * time.Second
)

// joinOutcome is the result of one attempt to join the seeds.
type joinOutcome int

const (
	joinFailed   joinOutcome = iota // no seed resolved, or none answered
	joinDone                        // joined another member
	joinNoOthers                    // the seeds resolve to this peer only, or there are none
)

// joinAtStart keeps resolving and joining the seeds, with backoff, until
// this peer shares a member list with another peer (it joined one, or one
// joined it), the seeds name no other peer (the first or only peer of a
// cluster), Config.JoinTimeout has passed, or ctx ends. It logs the
// outcome once; each failed attempt is a debug line.
func (m *Membership) joinAtStart(ctx context.Context, ml *memberlist.Memberlist) {
	deadline := m.now().Add(m.cfg.JoinTimeout)
	delay := joinBackoffMin
	for attempt := 1; ; attempt++ {
		switch m.tryJoin(ctx, ml) {
		case joinDone:
			m.logger.Info("joined the cluster", "members", ml.NumMembers(), "attempts", attempt)
			return
		case joinNoOthers:
			m.logger.Info("no other seed peer to join: starting as the first peer of the cluster", "peers", m.cfg.Peers)
			return
		}
		if m.hasOthers() {
			m.logger.Info("joined the cluster", "members", ml.NumMembers(), "attempts", attempt)
			return
		}
		wait := min(delay, deadline.Sub(m.now()))
		if wait <= 0 {
			m.logger.Warn("no seed peer answered within --"+flagJoinTimeout+"; serving as a cluster of one and re-joining every --"+flagRejoinInterval,
				"peers", m.cfg.Peers, "attempts", attempt)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.closing:
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, joinBackoffMax)
	}
}

// tryJoin resolves the seeds and joins the addresses of other peers.
func (m *Membership) tryJoin(ctx context.Context, ml *memberlist.Memberlist) joinOutcome {
	addrs, resolved := m.resolveSeeds(ctx, m.gossipAddr)
	switch {
	case len(m.cfg.Peers) == 0:
		return joinNoOthers
	case resolved == 0:
		return joinFailed // a DNS name may not list the peers yet
	case len(addrs) == 0:
		return joinNoOthers
	}
	n, err := ml.Join(addrs)
	if err != nil && n == 0 {
		m.logger.Debug("join seed peers failed; retrying", "seeds", addrs, "err", err)
		return joinFailed
	}
	return joinDone
}

// hasOthers reports whether the member list holds a peer other than this
// one: another peer may have joined this one while its own joins failed.
func (m *Membership) hasOthers() bool {
	for _, n := range m.events.members() {
		if n.name != m.cfg.PeerName {
			return true
		}
	}
	return false
}

// rejoin joins again the seed addresses that are not live members: after
// a partition, the peers on the other side are dead in this peer's view,
// and a push/pull with any of them merges the two halves. A healthy
// cluster contacts nobody.
func (m *Membership) rejoin(ctx context.Context, ml *memberlist.Memberlist) {
	addrs, resolved := m.resolveSeeds(ctx, m.gossipAddr)
	if resolved == 0 {
		m.metrics.rejoins.WithLabelValues(resultFailure).Inc()
		m.logger.Warn("re-join: no seed peer resolves to an address", "peers", m.cfg.Peers)
		return
	}
	targets := notMembers(addrs, m.events.members())
	if len(targets) == 0 {
		m.metrics.rejoins.WithLabelValues(resultSkipped).Inc()
		return
	}
	n, err := ml.Join(targets)
	if err != nil {
		m.metrics.rejoins.WithLabelValues(resultFailure).Inc()
		m.logger.Warn("re-join seed peers failed", "seeds", targets, "err", err)
		return
	}
	m.metrics.rejoins.WithLabelValues(resultSuccess).Inc()
	m.logger.Info("re-joined seed peers", "contacted", n, "members", ml.NumMembers())
}

// resolveSeeds resolves the seeds to IP:port addresses, every address of a
// name (a headless Service lists every peer), sorted and unique, without
// this peer's own gossip address. A seed that does not resolve is skipped
// (a debug line: at start a DNS name may not list the peers yet, and the
// outcome is logged once); resolved counts the seeds that resolved to at
// least one address. own is this peer's gossip address.
func (m *Membership) resolveSeeds(ctx context.Context, own string) (addrs []string, resolved int) {
	for _, seed := range m.cfg.Peers {
		host, port, err := net.SplitHostPort(seed)
		if err != nil {
			continue // Validate rejected it
		}
		ips, err := m.lookupHost(ctx, host)
		if err != nil || len(ips) == 0 {
			m.logger.Debug("resolve seed peer", "peer", seed, "err", err)
			continue
		}
		resolved++
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, port))
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	return slices.DeleteFunc(addrs, func(a string) bool { return a == own }), resolved
}

// notMembers returns the addresses no live node has.
func notMembers(addrs []string, nodes []node) []string {
	live := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		live[n.addr] = true
	}
	return slices.DeleteFunc(addrs, func(a string) bool { return live[a] })
}
