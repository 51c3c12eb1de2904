package main

import (
	"context"

	"github.com/pushring/pushring/api"
	"github.com/pushring/pushring/cluster"
	"github.com/pushring/pushring/store"
)

// clustered reports whether the peer gossips with others.
func (c *config) clustered() bool { return c.cluster.Membership.ListenAddress != "" }

// clusterConfig is the cluster configuration with what it needs of the
// other packages' flags.
func (c *config) clusterConfig() cluster.Config {
	cc := c.cluster
	cc.MaxBodyBytes = c.ingest.MaxBodyBytes
	cc.AdminAPI = c.api.EnableAdminAPI
	cc.PersistenceFile = c.persist.File
	cc.MaxInflight = c.api.MaxInflight
	cc.Received = cluster.ReceiveLimits{
		MaxLabelsPerSeries: c.ingest.MaxLabelsPerSeries, MaxLabelNameLength: c.ingest.MaxLabelNameLength,
		MaxLabelValueLength: c.ingest.MaxLabelValueLength, MaxMetricNameLength: c.ingest.MaxMetricNameLength,
	}
	return cc
}

// storeConfig is the store configuration of this peer: a clustered one
// remembers deletes for --cluster.tombstone-ttl (at most --store.max-groups
// of them), so that an older copy of a group does not bring it back.
func storeConfig(cfg *config) store.Config {
	c := cfg.store
	if cfg.clustered() {
		c.TombstoneTTL = cfg.cluster.TombstoneTTL
	}
	return c
}

// addLeave adds the actor whose interrupt is the cluster's "hand over,
// then leave" step. It is interrupted before the HTTP servers, which keep
// serving (and forwarding) meanwhile.
func addLeave(g *runGroup, c *cluster.Cluster) {
	stop := make(chan struct{})
	g.add("cluster leave", func() error {
		<-stop
		return nil
	}, func() {
		c.Leave()
		close(stop)
	})
}

// addCluster adds the actor that runs the cluster: membership, the peer
// protocol and hand-off. It is interrupted after the HTTP servers have
// drained: the peer protocol stops and what forwarded pushes stored
// meanwhile is handed over.
func addCluster(g *runGroup, c *cluster.Cluster) {
	g.add("cluster", func() error { return c.Run(context.Background()) }, c.Close)
}

// clusterViews adapts the cluster's views to the types the api declares.
type clusterViews struct{ c *cluster.Cluster }

func (v clusterViews) Ready() error { return v.c.Ready() }

func (v clusterViews) Status(ctx context.Context, stats bool) api.ClusterStatus {
	st := v.c.Status(ctx, stats)
	out := api.ClusterStatus{Self: st.Self, Settled: st.Settled, Leaving: st.Leaving, Peers: make([]api.PeerStatus, len(st.Peers))}
	joined := v.c.JoinTimes()
	for i, p := range st.Peers {
		out.Peers[i] = api.PeerStatus{ID: p.ID, State: p.State, Self: p.Self, Leaving: p.Leaving,
			GossipAddr: p.GossipAddr, GRPCAddr: p.GRPCAddr, HTTPAddr: p.HTTPAddr,
			Groups: p.Groups, Series: p.Series, Err: p.Err, Joined: joined[p.ID]}
	}
	return out
}

func (v clusterViews) Locate(k store.GroupKey) api.GroupLocation {
	return api.GroupLocation(v.c.Locate(k))
}

func (v clusterViews) GroupsByPeer(ctx context.Context) []api.PeerGroups {
	pgs := v.c.GroupsByPeer(ctx)
	out := make([]api.PeerGroups, len(pgs))
	for i, pg := range pgs {
		out[i] = api.PeerGroups(pg)
	}
	return out
}

func (v clusterViews) Groups(ctx context.Context) api.ClusterGroups {
	return api.ClusterGroups(v.c.Groups(ctx))
}

func (v clusterViews) WipeOthers(ctx context.Context) (int, []string) { return v.c.WipeOthers(ctx) }
