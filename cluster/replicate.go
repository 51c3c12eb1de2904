package cluster

import (
	"context"
	"sync"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// Replication (docs/design.md, "Replication"; DESIGN decision 13): a
// group's owners are the first --cluster.replication-factor members of its
// rendezvous ranking among the peers that serve. The first owner that
// answers applies a push (it alone runs the consistency check) and copies
// the group's resulting state, or its tombstone, to the other owners
// before the pusher gets its answer. A copy that does not get through in
// time does not fail the push: the group is under-replicated until repair
// (repair.go) brings the copy. Only the first live owner exposes a group
// (Exposure); the others hold their copies silently and take over, with
// no data to move, when it dies or leaves.

// applyAndReplicate applies p here, in an admission slot of this peer,
// and copies its group's new state to the group's other owners.
func (c *Cluster) applyAndReplicate(ctx context.Context, p ingest.Parsed) (ingest.Result, error) {
	if err := c.admit.Acquire(ctx); err != nil {
		c.ing.CountOverloaded()
		return ingest.Result{}, err
	}
	defer c.admit.Release()
	res, err := c.ing.Apply(ctx, p)
	if err != nil {
		return res, err
	}
	if key, ok := p.Key(); ok {
		c.replicate(ctx, key)
	}
	return res, nil
}

// replicate copies group k's state (or its tombstone) to every other owner
// of it in this peer's view, at once, each within --cluster.replication-
// timeout. The pusher's cancellation does not stop it: the push is applied.
func (c *Cluster) replicate(ctx context.Context, k store.GroupKey) {
	pl := c.placement()
	if c.cfg.ReplicationFactor < 2 || pl.Len() < 2 {
		return // no other owner
	}
	c.replicateIn(ctx, pl, k)
}

// replicateIn is replicate once placement pl has other owners: apart, so
// that what its copies share escapes to the heap only then.
func (c *Cluster) replicateIn(ctx context.Context, pl *shard.Placement, k store.GroupKey) {
	var targets []shard.Member
	for _, o := range pl.Owners(k.Hash(), c.cfg.ReplicationFactor) {
		if o.ID != c.self {
			targets = append(targets, o)
		}
	}
	if len(targets) == 0 {
		return
	}
	g, ok := c.stateOf(k)
	if !ok {
		return // expired or moved meanwhile: nothing to copy
	}
	req := &peerpb.HandOffRequest{OriginPeer: c.self, Groups: []*peerpb.Group{g}, Replica: true}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ReplicationTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, o := range targets {
		wg.Go(func() { c.metrics.replicaWrites.WithLabelValues(c.copyTo(ctx, o, req)).Inc() })
	}
	wg.Wait()
}

// copyTo sends copies to owner o and returns the result label: ok,
// rejected (o refused a copy: its limits) or failed (no answer in time, or
// o is passed over). A copy that did not land leaves its group
// under-replicated until repair.
func (c *Cluster) copyTo(ctx context.Context, o shard.Member, req *peerpb.HandOffRequest) string {
	release, err := c.breakers.acquire(o.ID)
	if err != nil {
		c.metrics.underReplicated.Add(float64(len(req.Groups)))
		return resultFailed
	}
	client, err := c.conns.client(o.GRPCAddr)
	if err != nil {
		release(false)
		c.metrics.underReplicated.Add(float64(len(req.Groups)))
		return resultFailed
	}
	resp, err := client.HandOff(ctx, req)
	release(err == nil)
	switch {
	case err != nil:
		c.metrics.underReplicated.Add(float64(len(req.Groups)))
		c.logger.Debug("copy to another owner failed; repair brings it later", "peer", o.ID, "groups", len(req.Groups), "err", err)
		return resultFailed
	case len(resp.GetRejected()) > 0:
		c.metrics.underReplicated.Add(float64(len(resp.GetRejected())))
		c.logger.Warn("another owner refused copies", "peer", o.ID, "refused", len(resp.GetRejected()), "first", resp.GetRejected()[0].GetMessage())
		return resultRejected
	}
	return resultOK
}

// stateOf is group k as the peer protocol carries it: its state, or its
// tombstone if it was deleted; false if this peer has neither.
func (c *Cluster) stateOf(k store.GroupKey) (*peerpb.Group, bool) {
	if wg, ok := c.st.GroupWire(k); ok {
		return wireToPB(wg), true
	}
	if v, ok := c.st.TombstoneOf(k); ok {
		return &peerpb.Group{Key: []byte(k.String()), Version: v, Deleted: true}, true
	}
	return nil, false
}

// Admits reports that the cluster takes this peer's admission slots
// itself (api.Pusher): only for the pushes it applies here. A push it
// forwards holds no slot here while the owner works on it; the calls in
// flight to each owner are bounded by its breaker instead (at most half of
// --push.max-inflight), so peers that forward to each other never hold
// each other's slots in a circle.
func (c *Cluster) Admits() bool { return true }

// isOwner reports whether this peer is one of the owners of groups with key
// hash h in view.
func (c *Cluster) isOwner(view *shard.Placement, h uint64) bool {
	return ownedBy(view, h, c.cfg.ReplicationFactor, c.self)
}

// Exposure is what this peer's store exposes on its scrape and in its
// views: with replication, the groups this peer is the first live owner
// of; without (replication factor 1, or a cluster of one), every group it
// holds (nil).
func (c *Cluster) Exposure() store.Exposure {
	if c.cfg.ReplicationFactor < 2 || !c.cfg.clustered() {
		return nil
	}
	return exposure{c}
}

// exposure exposes the groups this peer is the first owner of in its
// current view (none while it joins or leaves).
type exposure struct{ c *Cluster }

func (e exposure) Exposes(h uint64) bool { return e.c.view(true).Owner(h).ID == e.c.self }

func (e exposure) Generation() uint64 {
	g := (e.c.ring.Generation()*1_000_003 + e.c.live.generation()) << 2
	if e.c.leaving.Load() {
		g |= 1
	}
	if e.c.members.Serving() {
		g |= 2
	}
	return g
}
