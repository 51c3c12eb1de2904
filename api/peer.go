package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// Cluster is what the API needs of the membership.
type Cluster interface {
	// Self returns this peer.
	Self() shard.Member
	// Peers lists the live members, sorted by ID.
	Peers() []shard.PeerInfo
	// Settled reports whether the peer joined and its view of the members
	// has settled.
	Settled() bool
}

// PeerStore is what the peer service needs of the store besides Store.
type PeerStore interface {
	Receive(gs store.GroupSnapshot) (bool, error)
	ReceiveDelete(k store.GroupKey, v uint64) bool
	Stats() (groups, series int)
}

// Leaver is the ingester's side of the cluster: whether this peer is
// leaving (it then refuses hand-offs and is not ready), and a nudge to
// check for groups that should move on.
type Leaver interface {
	Leaving() bool
	// PokeHandOff asks for a hand-off pass soon; it never blocks.
	PokeHandOff()
}

// clusterState is set by JoinCluster.
type clusterState struct {
	members Cluster
	peers   *ingest.Peers
	store   PeerStore
	leaver  Leaver
}

// JoinCluster makes the API serve as one peer of a cluster: the peer gRPC
// service (RegisterPeerService), the cluster endpoints, and a readiness
// that waits for a settled membership. Call it once, before serving.
func (a *API) JoinCluster(c Cluster, peers *ingest.Peers, st PeerStore, l Leaver) {
	a.cluster = &clusterState{members: c, peers: peers, store: st, leaver: l}
}

// RegisterPeerService registers the Peer service on s.
func (a *API) RegisterPeerService(s *grpc.Server) {
	peerpb.RegisterPeerServer(s, &peerService{a: a})
}

// peerService serves the peer protocol (internal/peerpb) to the other
// peers of the cluster.
type peerService struct {
	peerpb.UnimplementedPeerServer
	a *API
}

// Push applies a push another peer forwarded here. It takes an admission
// slot like an HTTP push, and answers what this peer would answer over
// HTTP, so the forwarding peer relays the same status and body.
func (s *peerService) Push(ctx context.Context, req *peerpb.PushRequest) (*peerpb.PushResponse, error) {
	a := s.a
	if err := a.admit.acquire(ctx); err != nil {
		a.ingester.CountOverloaded()
		return pushResponse(err), nil
	}
	defer a.admit.release()
	header := http.Header{}
	if req.GetTtl() != "" {
		header.Set(ingest.TTLHeader, req.GetTtl())
	}
	res, err := a.ingester.Handle(ctx, ingest.Request{
		Method:          req.GetMethod(),
		Path:            req.GetPath(),
		ContentType:     req.GetContentType(),
		ContentEncoding: req.GetContentEncoding(),
		Body:            bytes.NewReader(req.GetBody()),
		Header:          header,
		Forwarded:       true,
	})
	if err != nil {
		a.logger.Debug("forwarded push failed", "origin", req.GetOriginPeer(), "err", err)
		return pushResponse(err), nil
	}
	return &peerpb.PushResponse{StatusCode: int32(res.Status)}, nil
}

// pushResponse is the answer to a push that failed: the status and body
// writeError would send.
func pushResponse(err error) *peerpb.PushResponse {
	resp := &peerpb.PushResponse{StatusCode: int32(statusOf(err)), Body: err.Error()}
	if s, ok := ingest.RetryAfter(err); ok {
		resp.RetryAfterSeconds = uint32(s)
	}
	return resp
}

// HandOff stores the groups an old owner hands to this peer. Each group
// is taken or refused on its own; an older copy than this peer's counts as
// taken, since the sender may drop it either way.
func (s *peerService) HandOff(_ context.Context, req *peerpb.HandOffRequest) (*peerpb.HandOffResponse, error) {
	cs := s.a.cluster
	if cs == nil {
		return nil, status.Error(codes.FailedPrecondition, "this peer is not in a cluster")
	}
	if cs.leaver.Leaving() {
		return nil, status.Error(codes.Unavailable, ingest.ErrLeaving.Error())
	}
	resp := &peerpb.HandOffResponse{}
	for _, g := range req.GetGroups() {
		gs, err := ingest.GroupFromPB(g)
		if err != nil {
			resp.Rejected = append(resp.Rejected, &peerpb.Rejection{Key: g.GetKey(), Reason: "invalid", Message: err.Error()})
			continue
		}
		if g.GetDeleted() {
			cs.store.ReceiveDelete(gs.Key, gs.Version)
			resp.Accepted++
			continue
		}
		if _, err := cs.store.Receive(gs); err != nil {
			resp.Rejected = append(resp.Rejected, &peerpb.Rejection{Key: g.GetKey(), Reason: handOffReason(err), Message: err.Error()})
			continue
		}
		resp.Accepted++
	}
	if resp.Accepted > 0 {
		// The sender's view may differ from ours: whatever is not ours
		// moves on.
		cs.leaver.PokeHandOff()
	}
	if n := len(resp.Rejected); n > 0 {
		s.a.logger.Warn("refused groups handed over", "origin", req.GetOriginPeer(), "refused", n, "first", resp.Rejected[0].GetMessage())
	}
	return resp, nil
}

func handOffReason(err error) string {
	switch {
	case errors.Is(err, store.ErrLimit):
		return "limit"
	case errors.Is(err, store.ErrInconsistent):
		return "inconsistent"
	default:
		return "invalid"
	}
}

// Metrics renders this peer's groups, without its own metrics.
func (s *peerService) Metrics(_ context.Context, req *peerpb.MetricsRequest) (*peerpb.MetricsResponse, error) {
	f, ct := store.FormatText, contentTypeText
	switch req.GetFormat() {
	case peerpb.Format_FORMAT_PROTOBUF:
		f, ct = store.FormatProtoDelim, contentTypeProtoDelim
	case peerpb.Format_FORMAT_OPENMETRICS:
		f, ct = store.FormatOpenMetrics, contentTypeOpenMetrics
	}
	var buf bytes.Buffer
	if err := s.a.store.WriteExposition(&buf, f, nil); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &peerpb.MetricsResponse{ContentType: ct, Exposition: buf.Bytes()}, nil
}

// Groups returns every group of this peer.
func (s *peerService) Groups(context.Context, *peerpb.GroupsRequest) (*peerpb.GroupsResponse, error) {
	snap := s.a.store.Snapshot()
	resp := &peerpb.GroupsResponse{Groups: make([]*peerpb.Group, 0, len(snap))}
	for _, gs := range snap {
		g, err := ingest.GroupToPB(gs)
		if err != nil {
			return nil, status.Error(codes.Internal, fmt.Sprintf("encode group %s: %v", gs.String(), err))
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// Stats counts this peer's groups and series.
func (s *peerService) Stats(context.Context, *peerpb.StatsRequest) (*peerpb.StatsResponse, error) {
	cs := s.a.cluster
	if cs == nil {
		return nil, status.Error(codes.FailedPrecondition, "this peer is not in a cluster")
	}
	g, n := cs.store.Stats()
	return &peerpb.StatsResponse{Groups: uint64(g), Series: uint64(n), Leaving: cs.leaver.Leaving()}, nil
}

// Wipe deletes every group of this peer, when another peer received an
// admin wipe. It needs --web.enable-admin-api here too.
func (s *peerService) Wipe(_ context.Context, req *peerpb.WipeRequest) (*peerpb.WipeResponse, error) {
	if !s.a.cfg.EnableAdminAPI {
		return nil, status.Error(codes.PermissionDenied, "the admin API is not enabled on this peer (--web.enable-admin-api)")
	}
	n := s.a.store.Wipe()
	s.a.logger.Info("wiped the store for a cluster-wide admin wipe", "origin", req.GetOriginPeer(), "groups", n)
	return &peerpb.WipeResponse{Groups: uint64(n)}, nil
}

// fanoutResult is one peer's answer to a fan-out.
type fanoutResult[T any] struct {
	peer shard.PeerInfo
	resp T
	err  error
}

// fanout calls every live peer but this one at once, each with the fan-out
// deadline, and returns their answers in peer order.
func fanout[T any](ctx context.Context, a *API, call func(context.Context, peerpb.PeerClient) (T, error)) []fanoutResult[T] {
	cs := a.cluster
	var others []shard.PeerInfo
	for _, p := range cs.members.Peers() {
		if !p.Self {
			others = append(others, p)
		}
	}
	out := make([]fanoutResult[T], len(others))
	ctx, cancel := context.WithTimeout(ctx, a.cfg.FanoutTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range others {
		out[i].peer = p
		wg.Go(func() {
			client, err := cs.peers.Client(p.GRPCAddr)
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

// problem describes a failed call of a fan-out for the answer that names
// the peers that did not answer.
func (r fanoutResult[T]) problem(timeout time.Duration) string {
	return fmt.Sprintf("peer %q: %s", r.peer.ID, describeFanoutError(r.err, timeout))
}

// describeFanoutError shortens a fan-out error for the answers that name
// the peers that did not answer.
func describeFanoutError(err error, timeout time.Duration) string {
	if s, ok := status.FromError(err); ok {
		if s.Code() == codes.DeadlineExceeded {
			return fmt.Sprintf("no answer within --cluster.fanout-timeout=%s", timeout)
		}
		return s.Message()
	}
	return err.Error()
}
