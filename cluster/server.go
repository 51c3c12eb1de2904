package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// server serves the peer protocol (internal/peerpb) to the other peers.
type server struct {
	peerpb.UnimplementedPeerServer
	c *Cluster
}

// Push applies a push another peer forwarded here, whatever this peer's
// own view says: a push is never forwarded twice. It takes an admission
// slot like an HTTP push (applyAndReplicate does), and answers what this
// peer would answer over HTTP, so the forwarding peer relays the same
// status and body.
func (s *server) Push(ctx context.Context, req *peerpb.PushRequest) (*peerpb.PushResponse, error) {
	c := s.c
	// Not after the forwarder gave up (applyByKey): the ingester checks
	// the context right before the store assigns the push a version.
	ctx, cancel := applyBy(ctx)
	defer cancel()
	release, err := c.budget.ChargeForwarded(req.GetBody(), req.GetContentType())
	if err != nil {
		return c.pushResponse(err), nil
	}
	defer release()
	header := http.Header{}
	if req.GetTtl() != "" {
		header.Set(ingest.TTLHeader, req.GetTtl())
	}
	p := c.ing.Parse(ingest.Request{
		Method:          req.GetMethod(),
		Path:            req.GetPath(),
		ContentType:     req.GetContentType(),
		ContentEncoding: req.GetContentEncoding(),
		Body:            forwardedBody(c.ing, req),
		Header:          header,
	})
	res, err := c.applyAndReplicate(ctx, p)
	if err != nil {
		c.logger.Debug("forwarded push refused", "origin", req.GetOriginPeer(), "err", err)
		return c.pushResponse(err), nil
	}
	if k, ok := p.Key(); ok && p.Method != http.MethodDelete && !c.isOwner(c.placement(), k.Hash()) {
		// The sender's view of the members differs from ours: if the group
		// is not ours either, it has to move on.
		c.pokeHandOff()
	}
	return &peerpb.PushResponse{StatusCode: int32(res.Status)}, nil
}

// forwardedBody is the body of a forwarded push: read ahead, as the api
// reads a push it takes, when it came decompressed (the sender read it
// first), so that the ingester treats it as it would here.
func forwardedBody(in Ingester, req *peerpb.PushRequest) io.Reader {
	if enc := req.GetContentEncoding(); enc == "" || strings.EqualFold(enc, "identity") {
		return in.ForwardedBody(req.GetBody())
	}
	return bytes.NewReader(req.GetBody())
}

// pushResponse is the answer to a push that failed: the status, body and
// Retry-After an HTTP push would get.
func (c *Cluster) pushResponse(err error) *peerpb.PushResponse {
	code, retry := c.answer(err)
	return &peerpb.PushResponse{StatusCode: int32(code), Body: err.Error(), RetryAfterSeconds: uint32(retry)}
}

// HandOff stores the groups an old owner hands to this peer, or the copies
// another owner sends it (a replica write, a repair). Each group is taken
// or refused on its own; an older copy than this peer's counts as taken,
// since the sender may drop it either way. A leaving peer takes nothing:
// the sender retries once its view no longer lists this peer.
func (s *server) HandOff(_ context.Context, req *peerpb.HandOffRequest) (*peerpb.HandOffResponse, error) {
	c := s.c
	if c.leaving.Load() {
		return nil, status.Error(codes.Unavailable, errLeaving.Error())
	}
	resp := &peerpb.HandOffResponse{}
	for _, g := range req.GetGroups() {
		if reason, err := c.receive(g); err != nil {
			resp.Rejected = append(resp.Rejected, &peerpb.Rejection{Key: g.GetKey(), Reason: reason, Message: err.Error()})
			continue
		}
		resp.Accepted++
	}
	if resp.Accepted > 0 && !req.GetReplica() {
		// The sender's view may differ from ours: whatever is not ours
		// moves on.
		c.pokeHandOff()
	}
	if n := len(resp.Rejected); n > 0 {
		c.logger.Warn("refused groups handed over", "origin", req.GetOriginPeer(), "refused", n, "first", resp.Rejected[0].GetMessage())
	}
	return resp, nil
}

// receive stores one handed-over group or tombstone, or returns why not.
func (c *Cluster) receive(g *peerpb.Group) (string, error) {
	gs, err := c.checkReceived(g)
	if err != nil {
		return rejectInvalid, err
	}
	if g.GetDeleted() {
		c.st.ReceiveDelete(gs.Key, gs.Version)
		return "", nil
	}
	if _, err := c.st.Receive(gs); err != nil {
		return handOffReason(err), err
	}
	return "", nil
}

// Reasons a receiver gives for a group it did not take.
const (
	rejectLimit        = "limit"
	rejectInconsistent = "inconsistent"
	rejectInvalid      = "invalid"
)

func handOffReason(err error) string {
	switch {
	case errors.Is(err, store.ErrLimit):
		return rejectLimit
	case errors.Is(err, store.ErrInconsistent):
		return rejectInconsistent
	default:
		return rejectInvalid
	}
}

// Groups returns every group of this peer.
func (s *server) Groups(context.Context, *peerpb.GroupsRequest) (*peerpb.GroupsResponse, error) {
	snap := s.c.st.Snapshot()
	resp := &peerpb.GroupsResponse{Groups: make([]*peerpb.Group, 0, len(snap))}
	for _, gs := range snap {
		g, err := groupToPB(gs)
		if err != nil {
			return nil, status.Error(codes.Internal, fmt.Sprintf("encode group %s: %v", gs.String(), err))
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// Stats counts this peer's groups and series.
func (s *server) Stats(context.Context, *peerpb.StatsRequest) (*peerpb.StatsResponse, error) {
	g, n := s.c.st.Stats()
	return &peerpb.StatsResponse{Groups: uint64(g), Series: uint64(n), Leaving: s.c.leaving.Load()}, nil
}

// Wipe deletes every group of this peer, when another peer received an
// admin wipe. It needs --web.enable-admin-api here too.
func (s *server) Wipe(_ context.Context, req *peerpb.WipeRequest) (*peerpb.WipeResponse, error) {
	if !s.c.cfg.AdminAPI {
		return nil, status.Error(codes.PermissionDenied, "the admin API is not enabled on this peer (--web.enable-admin-api)")
	}
	n := s.c.st.Wipe()
	s.c.logger.Info("wiped the store for a cluster-wide admin wipe", "origin", req.GetOriginPeer(), "groups", n)
	return &peerpb.WipeResponse{Groups: uint64(n)}, nil
}
