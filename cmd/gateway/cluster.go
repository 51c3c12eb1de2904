package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// tombstoneTTL is how long a peer of a cluster remembers a delete, so that
// an old owner's copy handed over later does not bring the group back. A
// hand-off is retried for as long as the old owner runs, so this covers
// the hand-offs of a partition that heals within the hour; the count is
// capped at --store.max-groups.
const tombstoneTTL = time.Hour

// grpcStopTimeout bounds the graceful stop of the peer gRPC server: calls
// in flight are forwarded pushes and hand-off batches, each with its own
// deadline.
const grpcStopTimeout = 10 * time.Second

// clustered reports whether the peer gossips with others.
func (c *config) clustered() bool { return c.cluster.ListenAddress != "" }

// ringCluster adapts the membership to what the ingester needs.
type ringCluster struct{ m *shard.Membership }

func (c ringCluster) Self() string             { return c.m.Self().ID }
func (c ringCluster) View() ingest.View        { return placementView{c.m.Ring().Placement()} }
func (c ringCluster) Changed() <-chan struct{} { return c.m.Ring().Changed() }

// placementView adapts a placement snapshot to ingest.View.
type placementView struct{ p *shard.Placement }

func (v placementView) Owner(h uint64) ingest.Peer { return peerOf(v.p.Owner(h)) }

func (v placementView) Without(id string) ingest.View { return placementView{v.p.Without(id)} }

func (v placementView) Peers() []ingest.Peer {
	ms := v.p.Members()
	out := make([]ingest.Peer, len(ms))
	for i, m := range ms {
		out[i] = peerOf(m)
	}
	return out
}

func peerOf(m shard.Member) ingest.Peer { return ingest.Peer{ID: m.ID, Addr: m.GRPCAddr} }

// clusterParts are the pieces a clustered peer adds.
type clusterParts struct {
	membership *shard.Membership
	peers      *ingest.Peers
	grpcLis    net.Listener // nil for a single peer
	grpcServer *grpc.Server

	// drainBudget is --cluster.drain-timeout: the leave's hand-off and the
	// final one after the servers stopped share it, so a peer whose new
	// owners do not answer still exits inside its grace period.
	drainBudget time.Duration
	drainEnd    time.Time // set when the leave begins; read after (run group order)
}

// finalDrainMin is the least the final hand-off gets, for the groups that
// forwarded pushes stored here while the servers drained.
const finalDrainMin = 2 * time.Second

// joinCluster builds the membership and, for a clustered peer, opens the
// gRPC listener and wires forwarding and hand-off into the ingester and the
// API. httpAddr is the bound HTTP address this peer advertises.
func joinCluster(cfg *config, gw *gateway, httpAddr string, logger *slog.Logger, reg prometheus.Registerer) (*clusterParts, error) {
	cp := &clusterParts{peers: ingest.NewPeers(), drainBudget: cfg.clusterData.DrainTimeout}
	mcfg := cfg.cluster
	if cfg.clustered() {
		l, err := net.Listen("tcp", mcfg.GRPCListenAddress)
		if err != nil {
			return nil, fmt.Errorf("listen on --cluster.grpc-listen-address %s: %w", mcfg.GRPCListenAddress, err)
		}
		cp.grpcLis = l
		mcfg.GRPCListenAddress = l.Addr().String() // the bound port, for :0
	}
	m, err := shard.New(mcfg, httpAddr, logger.With("component", "cluster"), reg)
	if err != nil {
		cp.close()
		return nil, err
	}
	cp.membership = m
	gw.api.JoinCluster(m, cp.peers, gw.store, gw.ingester)
	if !cfg.clustered() {
		return cp, nil
	}
	if err := gw.ingester.JoinCluster(ringCluster{m}, cfg.clusterData, cp.peers, gw.store); err != nil {
		cp.close()
		return nil, err
	}
	cp.grpcServer = grpc.NewServer(peerpb.ServerOptions()...)
	gw.api.RegisterPeerService(cp.grpcServer)
	return cp, nil
}

// close releases what joinCluster opened, when the peer does not start.
func (cp *clusterParts) close() {
	if cp.grpcLis != nil {
		_ = cp.grpcLis.Close()
	}
	if cp.membership != nil {
		_ = cp.membership.Close()
	}
	cp.peers.Close()
}

// addLeave adds the actor that keeps the peer in the cluster and, when
// interrupted, leaves it: the leave goes out, the ingester routes every
// push as if this peer were gone, and its groups go to their new owners
// (bounded by --cluster.drain-timeout). It is interrupted before the HTTP
// servers, which keep serving (and forwarding) meanwhile.
func addLeave(g *runGroup, cp *clusterParts, ing *ingest.Ingester, logger *slog.Logger) {
	runCtx, cancel := context.WithCancel(context.Background())
	g.add("cluster membership", func() error { return cp.membership.Run(runCtx) }, func() {
		defer cancel()
		if cp.grpcServer == nil {
			_ = cp.membership.Close()
			return
		}
		ing.SetLeaving()
		cp.drainEnd = time.Now().Add(cp.drainBudget)
		if err := cp.membership.Close(); err != nil {
			logger.Warn("leaving the cluster", "err", err)
		}
		drain(ing, cp.drainEnd, logger)
	})
}

// drain hands this peer's groups to their new owners until deadline and
// logs the outcome.
func drain(ing *ingest.Ingester, deadline time.Time, logger *slog.Logger) {
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	left, err := ing.Drain(ctx)
	if err != nil {
		logger.Warn("hand-off before exit incomplete; these groups stay in this peer's persistence file only", "left", left, "err", err)
		return
	}
	logger.Info("handed every group to its new owner", "took", time.Since(start))
}

// addPeerServer adds the gRPC server of the peer protocol. When
// interrupted (after the HTTP servers drained) it stops gracefully and
// hands over what forwarded pushes stored meanwhile.
func addPeerServer(g *runGroup, cp *clusterParts, ing *ingest.Ingester, logger *slog.Logger) {
	addr := cp.grpcLis.Addr().String()
	g.add("peer grpc server "+addr, func() error {
		logger.Info("peer gRPC listening", "address", addr)
		return cp.grpcServer.Serve(cp.grpcLis)
	}, func() {
		stopped := make(chan struct{})
		go func() {
			cp.grpcServer.GracefulStop()
			close(stopped)
		}()
		t := time.NewTimer(grpcStopTimeout)
		defer t.Stop()
		select {
		case <-stopped:
		case <-t.C:
			cp.grpcServer.Stop()
			<-stopped
		}
		drain(ing, later(cp.drainEnd, time.Now().Add(finalDrainMin)), logger)
		cp.peers.Close()
	})
}

// addHandOff adds the actor that hands groups to their new owners after
// every change of the membership.
func addHandOff(g *runGroup, ing *ingest.Ingester) {
	ctx, cancel := context.WithCancel(context.Background())
	g.add("hand-off", func() error { return ing.RunHandOff(ctx) }, cancel)
}

// storeConfig is the store configuration of this peer: a clustered one
// keeps tombstones.
func storeConfig(cfg *config) store.Config {
	c := cfg.store
	if cfg.clustered() {
		c.TombstoneTTL = tombstoneTTL
	}
	return c
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
