package shard

import (
	"slices"
)

// work is the membership worker: the one goroutine that turns memberlist
// notifications into placements. Membership owns it; Close stops and
// joins it.
func (m *Membership) work() {
	defer close(m.workerDone)
	for {
		select {
		case <-m.stopWorker:
			return
		case <-m.poke:
			m.refresh()
		}
	}
}

// refresh builds the placement of the live members that serve, with this
// peer always in it, and makes it current if it differs. A joining member
// is left out until it serves: it owns nothing meanwhile. A leaving peer
// keeps its last placement: memberlist no longer lists it, and consumers
// may rely on the ring holding this peer.
func (m *Membership) refresh() {
	ml := m.ml.Load()
	if ml == nil || m.leaving.Load() {
		return
	}
	nodes := m.events.members()
	members := make([]Member, 0, len(nodes)+1)
	haveSelf := false
	for _, n := range nodes {
		mb, joining := m.memberOf(n)
		self := mb.ID == m.cfg.PeerName
		if joining && !self {
			continue
		}
		haveSelf = haveSelf || self
		members = append(members, mb)
	}
	if !haveSelf {
		members = append(members, m.Self())
	}
	p, err := NewPlacement(members)
	if err != nil {
		// memberlist keys its nodes by name, so names are unique.
		m.logger.Error("build placement", "err", err)
		return
	}
	old := m.ring.Placement()
	if !m.ring.update(p) {
		return
	}
	m.lastChange.Store(m.now().UnixNano())
	m.metrics.members.Set(float64(p.Len()))
	added, removed := diffIDs(old, p)
	m.logger.Info("cluster membership changed", "members", p.Len(), "added", added, "removed", removed)
}

// diffIDs lists the IDs of members that are only in p (added) and only in
// old (removed). Members whose addresses changed are in neither.
func diffIDs(old, p *Placement) (added, removed []string) {
	for _, mb := range p.members {
		if _, ok := old.Member(mb.ID); !ok {
			added = append(added, mb.ID)
		}
	}
	for _, mb := range old.members {
		if _, ok := p.Member(mb.ID); !ok {
			removed = append(removed, mb.ID)
		}
	}
	return slices.Clip(added), slices.Clip(removed)
}
