package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// PeerStatus is one member as the cluster views show it.
type PeerStatus struct {
	ID         string
	State      string
	Self       bool
	Leaving    bool
	GossipAddr string // empty for a cluster of one
	GRPCAddr   string
	HTTPAddr   string
	// Groups and Series are what the peer holds; nil when not asked for,
	// or when it did not answer.
	Groups, Series *int
	// Err says why the peer did not answer; empty if it did.
	Err string
}

// Status is this peer's view of the cluster.
type Status struct {
	Self    string
	Settled bool
	Leaving bool
	Peers   []PeerStatus // sorted by ID
}

// Status returns the members as this peer sees them. With stats, it asks
// every other peer what it holds, within --cluster.fanout-timeout.
func (c *Cluster) Status(ctx context.Context, stats bool) Status {
	byID := map[string]fanoutResult[*peerpb.StatsResponse]{}
	if stats {
		for _, res := range fanout(ctx, c, func(ctx context.Context, pc peerpb.PeerClient) (*peerpb.StatsResponse, error) {
			return pc.Stats(ctx, &peerpb.StatsRequest{})
		}) {
			byID[res.peer.ID] = res
		}
	}
	st := Status{Self: c.self, Settled: c.members.Settled(), Leaving: c.leaving.Load()}
	for _, p := range c.members.Peers() {
		ps := PeerStatus{ID: p.ID, State: p.State, Self: p.Self, GossipAddr: p.GossipAddr, GRPCAddr: p.GRPCAddr, HTTPAddr: p.HTTPAddr}
		switch res, ok := byID[p.ID]; {
		case p.Self && stats:
			g, n := c.st.Stats()
			ps.Groups, ps.Series, ps.Leaving = &g, &n, st.Leaving
		case p.Self:
			ps.Leaving = st.Leaving
		case ok && res.err != nil:
			ps.Err = c.describe(res.err)
		case ok:
			g, n := int(res.resp.GetGroups()), int(res.resp.GetSeries())
			ps.Groups, ps.Series, ps.Leaving = &g, &n, res.resp.GetLeaving()
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

// Groups is every peer's groups merged, for the cluster-wide views.
type Groups struct {
	// Groups are sorted by key; a group two peers hold (in the moments of
	// a hand-off) appears once, at its newest version.
	Groups []store.GroupSnapshot
	// Missing says, per peer whose groups are not all in, why.
	Missing []string
	// Answered tells, per member id, whether its groups are in.
	Answered map[string]bool
}

// Groups collects every peer's groups: this peer's and the others' over
// gRPC, within --cluster.fanout-timeout.
func (c *Cluster) Groups(ctx context.Context) Groups {
	out := Groups{Groups: c.st.Snapshot(), Answered: map[string]bool{c.self: true}}
	for _, res := range fanout(ctx, c, func(ctx context.Context, pc peerpb.PeerClient) (*peerpb.GroupsResponse, error) {
		return pc.Groups(ctx, &peerpb.GroupsRequest{})
	}) {
		out.Answered[res.peer.ID] = res.err == nil
		if res.err != nil {
			out.Missing = append(out.Missing, c.problem(res.peer, res.err))
			continue
		}
		for _, g := range res.resp.GetGroups() {
			gs, err := groupFromPB(g)
			if err != nil {
				out.Missing = append(out.Missing, fmt.Sprintf("peer %q: a group does not decode: %v", res.peer.ID, err))
				out.Answered[res.peer.ID] = false
				continue
			}
			out.Groups = append(out.Groups, gs)
		}
	}
	slices.SortStableFunc(out.Groups, func(x, y store.GroupSnapshot) int {
		if c := strings.Compare(x.Key.String(), y.Key.String()); c != 0 {
			return c
		}
		return cmp.Compare(y.Version, x.Version) // newest first
	})
	out.Groups = slices.CompactFunc(out.Groups, func(x, y store.GroupSnapshot) bool { return x.Key == y.Key })
	return out
}

// WipeOthers deletes every group of every other peer, for the admin wipe
// that empties the cluster as it would the one Pushgateway this replaces.
// It returns how many groups they held, and the peers that did not wipe,
// with why.
func (c *Cluster) WipeOthers(ctx context.Context) (groups int, failed []string) {
	for _, res := range fanout(ctx, c, func(ctx context.Context, pc peerpb.PeerClient) (*peerpb.WipeResponse, error) {
		return pc.Wipe(ctx, &peerpb.WipeRequest{OriginPeer: c.self})
	}) {
		if res.err != nil {
			failed = append(failed, c.problem(res.peer, res.err))
			continue
		}
		groups += int(res.resp.GetGroups())
	}
	if len(failed) == 0 && groups > 0 {
		c.logger.Info("wiped every other peer of the cluster", "groups", groups)
	}
	return groups, failed
}

// fanoutResult is one peer's answer to a fan-out.
type fanoutResult[T any] struct {
	peer shard.PeerInfo
	resp T
	err  error
}

// fanout calls every live peer but this one at once, each with the
// fan-out deadline, and returns their answers in peer order.
func fanout[T any](ctx context.Context, c *Cluster, call func(context.Context, peerpb.PeerClient) (T, error)) []fanoutResult[T] {
	var others []shard.PeerInfo
	for _, p := range c.members.Peers() {
		if !p.Self {
			others = append(others, p)
		}
	}
	out := make([]fanoutResult[T], len(others))
	ctx, cancel := context.WithTimeout(ctx, c.cfg.FanoutTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range others {
		out[i].peer = p
		wg.Go(func() {
			client, err := c.conns.client(p.GRPCAddr)
			if err != nil {
				out[i].err = err
				return
			}
			out[i].resp, out[i].err = call(ctx, client)
		})
	}
	wg.Wait()
	return out
}

// problem names a peer that did not answer a fan-out, and why.
func (c *Cluster) problem(p shard.PeerInfo, err error) string {
	return fmt.Sprintf("peer %q: %s", p.ID, c.describe(err))
}

// describe shortens a fan-out error for the answers that name the peers
// that did not answer.
func (c *Cluster) describe(err error) string {
	if s, ok := status.FromError(err); ok {
		if s.Code() == codes.DeadlineExceeded {
			return fmt.Sprintf("no answer within --%s=%s", flagFanoutTimeout, c.cfg.FanoutTimeout)
		}
		return s.Message()
	}
	return err.Error()
}
