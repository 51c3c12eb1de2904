package cluster

import (
	"context"
	"time"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// Location says where a group lives in the current placement.
type Location struct {
	// Owner is the id of the peer that owns the group: pushes to it are
	// applied there, and it exposes the group.
	Owner string
	// OwnerHTTPAddr is the owner's advertised HTTP address.
	OwnerHTTPAddr string
	// Replicas are the ids of the peers that keep copies of the group
	// besides its owner, in the order they take over; empty with
	// --cluster.replication-factor=1.
	Replicas []string
}

// Locate returns where group k lives in the placement pushes are routed
// by: its first owner, which applies its pushes and exposes it, and the
// other --cluster.replication-factor owners, which keep copies. It asks
// no other peer.
func (c *Cluster) Locate(k store.GroupKey) Location {
	owners := c.placement().Owners(k.Hash(), c.cfg.ReplicationFactor)
	loc := Location{Replicas: []string{}}
	for i, o := range owners {
		if i == 0 {
			loc.Owner, loc.OwnerHTTPAddr = o.ID, o.HTTPAddr
			continue
		}
		loc.Replicas = append(loc.Replicas, o.ID)
	}
	return loc
}

// PeerGroups is the groups one peer holds, or why it did not say.
type PeerGroups struct {
	Peer   string
	Groups []store.GroupSnapshot
	// Err says why the peer's groups are not all in; empty if they are.
	Err string
}

// GroupsByPeer returns the groups each live peer holds, this one first,
// the others asked over gRPC within --cluster.fanout-timeout. Unlike
// Groups it merges nothing: a group two peers hold (in the moments of a
// hand-off) is under both.
func (c *Cluster) GroupsByPeer(ctx context.Context) []PeerGroups {
	out := []PeerGroups{{Peer: c.self, Groups: c.st.Snapshot()}}
	for _, res := range fanout(ctx, c, func(ctx context.Context, pc peerpb.PeerClient) (*peerpb.GroupsResponse, error) {
		return pc.Groups(ctx, &peerpb.GroupsRequest{})
	}) {
		pg := PeerGroups{Peer: res.peer.ID}
		if res.err != nil {
			pg.Err = c.describe(res.err)
			out = append(out, pg)
			continue
		}
		for _, g := range res.resp.GetGroups() {
			gs, err := groupFromPB(g)
			if err != nil {
				pg.Err = "a group does not decode: " + err.Error()
				continue
			}
			pg.Groups = append(pg.Groups, gs)
		}
		out = append(out, pg)
	}
	return out
}

// JoinTimes returns, per live member id, when the member joined as it
// advertises it; members that do not say are left out.
func (c *Cluster) JoinTimes() map[string]time.Time {
	out := map[string]time.Time{}
	for _, p := range c.members.Peers() {
		if !p.Joined.IsZero() {
			out[p.ID] = p.Joined
		}
	}
	return out
}
