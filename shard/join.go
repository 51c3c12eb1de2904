package shard

import (
	"context"
	"net"
	"slices"

	"github.com/hashicorp/memberlist"
)

// join joins the seeds at start. Failing is not fatal: the first peer of a
// cluster has nobody to join, and rejoin retries.
func (m *Membership) join(ctx context.Context, ml *memberlist.Memberlist) {
	addrs, resolved := m.resolveSeeds(ctx, ml.LocalNode().Address())
	switch {
	case len(m.cfg.Peers) > 0 && resolved == 0:
		m.logger.Warn("no seed peer resolves: starting as a cluster of one; retrying every --"+flagRejoinInterval, "peers", m.cfg.Peers)
		return
	case len(addrs) == 0:
		m.logger.Info("no other seed peer to join: starting as a cluster of one", "peers", m.cfg.Peers)
		return
	}
	n, err := ml.Join(addrs)
	if err != nil {
		m.logger.Warn("join seed peers failed; retrying every --"+flagRejoinInterval, "seeds", addrs, "err", err)
		return
	}
	m.logger.Info("joined the cluster", "contacted", n, "members", ml.NumMembers())
}

// rejoin joins again the seed addresses that are not live members: after
// a partition, the peers on the other side are dead in this peer's view,
// and a push/pull with any of them merges the two halves. A healthy
// cluster contacts nobody.
func (m *Membership) rejoin(ctx context.Context, ml *memberlist.Memberlist) {
	addrs, resolved := m.resolveSeeds(ctx, ml.LocalNode().Address())
	if resolved == 0 {
		m.metrics.rejoins.WithLabelValues(resultFailure).Inc() // resolveSeeds logged why
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
// this peer's own gossip address. A seed that does not resolve is logged
// and skipped; resolved counts the seeds that resolved. own is this peer's
// gossip address.
func (m *Membership) resolveSeeds(ctx context.Context, own string) (addrs []string, resolved int) {
	for _, seed := range m.cfg.Peers {
		host, port, err := net.SplitHostPort(seed)
		if err != nil {
			continue // Validate rejected it
		}
		ips, err := m.lookupHost(ctx, host)
		if err != nil {
			m.logger.Warn("resolve seed peer", "peer", seed, "err", err)
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
