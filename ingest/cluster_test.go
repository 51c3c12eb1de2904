package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// fakeCluster is a cluster whose every group is owned by owner.
type fakeCluster struct {
	self    string
	owner   Peer
	changed chan struct{}
}

func (c *fakeCluster) Self() string             { return c.self }
func (c *fakeCluster) View() View               { return fakeView{c.owner, c.self} }
func (c *fakeCluster) Changed() <-chan struct{} { return c.changed }

type fakeView struct {
	owner Peer
	self  string
}

func (v fakeView) Owner(uint64) Peer { return v.owner }
func (v fakeView) Without(id string) View {
	if id == v.owner.ID {
		return fakeView{Peer{ID: v.self}, v.self}
	}
	return v
}
func (v fakeView) Peers() []Peer { return []Peer{v.owner, {ID: v.self}} }

// fakeOwner is a peer gRPC server that records what it is sent.
type fakeOwner struct {
	peerpb.UnimplementedPeerServer
	mu       sync.Mutex
	pushes   []*peerpb.PushRequest
	answer   *peerpb.PushResponse
	handoffs []*peerpb.Group
	deletes  []*peerpb.Group // tombstones handed over
	reject   map[string]bool // keys refused at hand-off
}

func (f *fakeOwner) Push(_ context.Context, r *peerpb.PushRequest) (*peerpb.PushResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, r)
	return f.answer, nil
}

func (f *fakeOwner) HandOff(_ context.Context, r *peerpb.HandOffRequest) (*peerpb.HandOffResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &peerpb.HandOffResponse{}
	for _, g := range r.GetGroups() {
		if g.GetDeleted() {
			f.deletes = append(f.deletes, g)
			resp.Accepted++
			continue
		}
		if f.reject[string(g.GetKey())] {
			resp.Rejected = append(resp.Rejected, &peerpb.Rejection{Key: g.GetKey(), Reason: "limit", Message: "full"})
			continue
		}
		f.handoffs = append(f.handoffs, g)
		resp.Accepted++
	}
	return resp, nil
}

// serveOwner serves f on a loopback port until the test ends.
func serveOwner(t *testing.T, f *fakeOwner) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer(peerpb.ServerOptions()...)
	peerpb.RegisterPeerServer(s, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return l.Addr().String()
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func clusteredIngester(t *testing.T, cfg Config, st Store, hs HandOffStore, owner Peer) (*Ingester, *prometheus.Registry) {
	t.Helper()
	in, reg := newTestIngester(t, cfg, st)
	peers := NewPeers()
	t.Cleanup(peers.Close)
	cc := DefaultClusterConfig()
	cc.ForwardTimeout = 2 * time.Second
	cc.DrainTimeout = 500 * time.Millisecond
	require.NoError(t, in.JoinCluster(&fakeCluster{self: "a", owner: owner, changed: make(chan struct{})}, cc, peers, hs))
	return in, reg
}

func TestForwardOwnerUnavailable(t *testing.T) {
	st := &fakeStore{}
	in, reg := clusteredIngester(t, DefaultConfig(), st, nil, Peer{ID: "b", Addr: closedAddr(t)})
	_, err := in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n")})
	require.Equal(t, http.StatusServiceUnavailable, StatusOf(err))
	s, ok := RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 1, s)
	require.Contains(t, err.Error(), `peer "b"`)
	require.Contains(t, err.Error(), "retry later")
	require.Empty(t, st.pushes, "nothing is stored here instead")
	require.InDelta(t, 1, testutil.ToFloat64(in.metrics.rejected.WithLabelValues(reasonOwnerUnavailable)), 0)
	require.InDelta(t, 1, testutil.ToFloat64(in.metrics.forwarded.WithLabelValues(forwardUnavailable)), 0)
	_ = reg

	// An owner whose address is unknown (its metadata did not decode).
	in, _ = clusteredIngester(t, DefaultConfig(), st, nil, Peer{ID: "c"})
	_, err = in.Handle(context.Background(), Request{Method: http.MethodDelete, Path: "/job/j"})
	require.ErrorIs(t, err, ErrOwnerUnavailable)
	require.Empty(t, st.deletes)
}

func TestForwardRelaysTheOwnersAnswer(t *testing.T) {
	owner := &fakeOwner{answer: &peerpb.PushResponse{StatusCode: 429, Body: "full; raise --store.max-groups", RetryAfterSeconds: 7}}
	st := &fakeStore{}
	in, _ := clusteredIngester(t, DefaultConfig(), st, nil, Peer{ID: "b", Addr: serveOwner(t, owner)})
	body := gzipBytes(t, []byte("m 1\n"))
	_, err := in.Handle(context.Background(), Request{
		Method: http.MethodPost, Path: "/job/j/instance@base64/YQ==", ContentType: "text/plain", ContentEncoding: "gzip",
		Body: bytes.NewReader(body), Header: http.Header{"Pushring-Ttl": {"5m"}},
	})
	require.Equal(t, http.StatusTooManyRequests, StatusOf(err))
	require.Equal(t, "full; raise --store.max-groups", err.Error(), "the body verbatim")
	s, ok := RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 7, s)
	require.Empty(t, st.pushes)

	require.Len(t, owner.pushes, 1)
	got := owner.pushes[0]
	require.Equal(t, http.MethodPost, got.GetMethod())
	require.Equal(t, "/job/j/instance@base64/YQ==", got.GetPath(), "the escaped path, undecoded")
	require.Equal(t, "gzip", got.GetContentEncoding())
	require.Equal(t, "text/plain", got.GetContentType())
	require.Equal(t, body, got.GetBody(), "the body as received, still compressed")
	require.Equal(t, "5m", got.GetTtl())
	require.True(t, got.GetForwarded())
	require.Equal(t, "a", got.GetOriginPeer())
	require.InDelta(t, 0, testutil.ToFloat64(in.metrics.rejected.WithLabelValues(reasonMaxGroups)), 0, "the owner counts its rejection")
	require.InDelta(t, 1, testutil.ToFloat64(in.metrics.forwarded.WithLabelValues(forwardRefused)), 0)

	owner.answer = &peerpb.PushResponse{StatusCode: 202}
	res, err := in.Handle(context.Background(), Request{Method: http.MethodDelete, Path: "/job/j"})
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, res.Status)
	require.InDelta(t, 1, testutil.ToFloat64(in.metrics.forwarded.WithLabelValues(forwardOK)), 0)
}

func TestForwardedPushIsAppliedHere(t *testing.T) {
	st := &fakeStore{}
	in, _ := clusteredIngester(t, DefaultConfig(), st, nil, Peer{ID: "b", Addr: closedAddr(t)})
	res, err := in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n"), Forwarded: true})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.Status)
	require.Len(t, st.pushes, 1, "a forwarded push is never forwarded again")
}

// TestForwardChecksWhatItCanHere: requests refused before their body is
// read get the owner's answer without a call to it.
func TestForwardChecksWhatItCanHere(t *testing.T) {
	owner := &fakeOwner{answer: &peerpb.PushResponse{StatusCode: 200}}
	cfg := DefaultConfig()
	cfg.MaxBodyBytes = 16
	in, _ := clusteredIngester(t, cfg, &fakeStore{}, nil, Peer{ID: "b", Addr: serveOwner(t, owner)})
	_, err := in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader(strings.Repeat("m 1\n", 10))})
	require.Equal(t, http.StatusRequestEntityTooLarge, StatusOf(err))
	require.Contains(t, err.Error(), "--push.max-body-bytes")
	_, err = in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/", Body: strings.NewReader("m 1\n")})
	require.Equal(t, http.StatusBadRequest, StatusOf(err), "a path error is answered here, as at the owner")
	_, err = in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n"),
		Header: http.Header{"Pushring-Ttl": {"1m", "2m"}}})
	require.Equal(t, http.StatusBadRequest, StatusOf(err), "a repeated TTL header is refused here, as at the owner")
	_, err = in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/j", Body: strings.NewReader("m 1\n"),
		Header: http.Header{"Pushring-Ttl": {""}}})
	require.Equal(t, http.StatusBadRequest, StatusOf(err), "an empty TTL header is refused here, as at the owner")
	require.Empty(t, owner.pushes)

	// A body over the limit gets the message the owner would give, which
	// depends on the encoding and on which size trips first.
	alone, _ := newTestIngester(t, cfg, &fakeStore{})
	for _, body := range []struct {
		name, encoding string
		b              []byte
	}{
		{"gzip, large once decompressed", "gzip", gzipBytes(t, []byte(strings.Repeat("m 1\n", 100)))},
		{"identity", "identity", []byte(strings.Repeat("m 1\n", 10))},
		{"unknown encoding", "br", []byte(strings.Repeat("m 1\n", 10))},
	} {
		req := func() Request {
			return Request{Method: http.MethodPut, Path: "/job/j", ContentEncoding: body.encoding, Body: bytes.NewReader(body.b)}
		}
		_, want := alone.Handle(context.Background(), req())
		_, got := in.Handle(context.Background(), req())
		require.Equal(t, StatusOf(want), StatusOf(got), body.name)
		require.Equal(t, want.Error(), got.Error(), body.name)
	}
	require.Empty(t, owner.pushes)
}

func TestJoinClusterNeedsABoundedBody(t *testing.T) {
	for _, max := range []int64{0, 64 << 20} {
		cfg := DefaultConfig()
		cfg.MaxBodyBytes = max
		in, _ := newTestIngester(t, cfg, &fakeStore{})
		err := in.JoinCluster(&fakeCluster{self: "a"}, DefaultClusterConfig(), NewPeers(), nil)
		require.ErrorContains(t, err, "--push.max-body-bytes")
	}
}

// TestRunHandOffMovesStrayGroups: a forwarded push stored here although
// another peer owns the group (the sender's view differed) is handed to
// the owner without waiting for a membership change.
func TestRunHandOffMovesStrayGroups(t *testing.T) {
	st, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	owner := &fakeOwner{}
	in, _ := clusteredIngester(t, DefaultConfig(), st, st, Peer{ID: "b", Addr: serveOwner(t, owner)})
	in.handOffSweep = time.Hour // only the first pass and the push itself can move groups
	waitEmpty := func(what string) {
		require.Eventually(t, func() bool { return len(st.Keys()) == 0 }, 10*time.Second, 10*time.Millisecond, what)
	}
	// A group from before the start goes in the first pass; once it is
	// gone, that pass is over.
	_, err = in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/early", Body: strings.NewReader("m 1\n"), Forwarded: true})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.RunHandOff(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	waitEmpty("the first pass did not hand the early group over")

	_, err = in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/stray", Body: strings.NewReader("n 1\n"), Forwarded: true})
	require.NoError(t, err)
	waitEmpty("the stray group is still here: the push did not wake the hand-off")
	owner.mu.Lock()
	defer owner.mu.Unlock()
	require.Len(t, owner.handoffs, 2)
}

// TestDrainSendsTombstones: a delete this peer saw of a group another peer
// owns goes to that peer, so an older copy there goes too.
func TestDrainSendsTombstones(t *testing.T) {
	st, err := store.New(store.Config{TombstoneTTL: time.Hour}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	k := store.NewGroupKey(map[string]string{"job": "gone"})
	st.Delete(k)
	owner := &fakeOwner{}
	in, _ := clusteredIngester(t, DefaultConfig(), st, st, Peer{ID: "b", Addr: serveOwner(t, owner)})
	left, err := in.Drain(context.Background())
	require.NoError(t, err)
	require.Zero(t, left)
	owner.mu.Lock()
	require.Len(t, owner.deletes, 1)
	require.Equal(t, k.String(), string(owner.deletes[0].GetKey()))
	owner.mu.Unlock()
	require.Empty(t, st.Tombstones(), "the owner has it now")
}

// TestDrainHandsEveryGroupOver drains a real store to a fake new owner;
// a group the owner refuses stays, and Drain says so after its timeout.
func TestDrainHandsEveryGroupOver(t *testing.T) {
	st, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	keys := []store.GroupKey{
		store.NewGroupKey(map[string]string{"job": "a"}),
		store.NewGroupKey(map[string]string{"job": "b"}),
		store.NewGroupKey(map[string]string{"job": "c"}),
	}
	for i, k := range keys {
		text := fmt.Sprintf("# TYPE m%d gauge\nm%d 1\n", i, i)
		require.NoError(t, st.Apply(store.Push{Key: k, Replace: true, Families: parseText(t, text), Time: testNow}))
	}
	owner := &fakeOwner{reject: map[string]bool{keys[2].String(): true}}
	in, _ := clusteredIngester(t, DefaultConfig(), st, st, Peer{ID: "b", Addr: serveOwner(t, owner)})

	left, err := in.Drain(context.Background())
	require.Equal(t, 1, left)
	require.ErrorContains(t, err, "--cluster.drain-timeout")
	require.True(t, in.Leaving())
	require.Len(t, owner.handoffs, 2)
	for _, g := range owner.handoffs {
		gs, err := GroupFromPB(g)
		require.NoError(t, err)
		want, _ := st.Group(gs.Key)
		require.Zero(t, want.Version, "handed over and gone here")
		require.Len(t, gs.Families, 3, "m and the two push-time gauges")
	}
	require.Equal(t, []store.GroupKey{keys[2]}, st.Keys(), "the refused group stays")
	require.InDelta(t, 2, testutil.ToFloat64(in.metrics.handOffGroups.WithLabelValues(handOffSent)), 0)
	require.GreaterOrEqual(t, testutil.ToFloat64(in.metrics.handOffGroups.WithLabelValues(handOffRejected)), 1.0)
}

// TestGroupPBRoundTrip checks the peer encoding of a group keeps
// everything hand-off needs.
func TestGroupPBRoundTrip(t *testing.T) {
	st, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	k := store.NewGroupKey(map[string]string{"job": "a", "instance": "x"})
	require.NoError(t, st.Apply(store.Push{Key: k, Replace: true, Families: parseText(t, "# HELP m h\n# TYPE m histogram\nm_bucket{le=\"1\"} 1\nm_bucket{le=\"+Inf\"} 2\nm_sum 3\nm_count 2\n"), Time: testNow, TTL: time.Hour}))
	gs, _ := st.Group(k)
	g, err := GroupToPB(gs)
	require.NoError(t, err)
	back, err := GroupFromPB(g)
	require.NoError(t, err)
	require.Equal(t, gs.Key, back.Key)
	require.Equal(t, gs.Version, back.Version)
	require.True(t, gs.Deadline.Equal(back.Deadline))
	require.Len(t, back.Families, len(gs.Families))
	for i := range gs.Families {
		require.True(t, gs.Families[i].Time.Equal(back.Families[i].Time))
		require.Equal(t, gs.Families[i].Family.String(), back.Families[i].Family.String())
	}
	g.Families[0].Name = "other"
	_, err = GroupFromPB(g)
	require.Error(t, err, "a family under the wrong name")
}
