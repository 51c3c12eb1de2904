package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// fakeCluster is a membership whose members and settledness tests set.
type fakeCluster struct {
	peers   []shard.PeerInfo
	settled atomic.Bool
}

func (c *fakeCluster) Self() shard.Member {
	for _, p := range c.peers {
		if p.Self {
			return p.Member
		}
	}
	return shard.Member{}
}
func (c *fakeCluster) Peers() []shard.PeerInfo { return c.peers }
func (c *fakeCluster) Settled() bool           { return c.settled.Load() }

type fakePeerStore struct {
	mu         sync.Mutex
	received   []store.GroupSnapshot
	deleted    []store.GroupKey
	receiveErr error
}

func (f *fakePeerStore) Receive(gs store.GroupSnapshot) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.receiveErr != nil {
		return false, f.receiveErr
	}
	f.received = append(f.received, gs)
	return true, nil
}

func (f *fakePeerStore) ReceiveDelete(k store.GroupKey, _ uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, k)
	return true
}

func (*fakePeerStore) Stats() (int, int) { return 3, 12 }

type fakeLeaver struct {
	leaving atomic.Bool
	pokes   atomic.Int64
}

func (l *fakeLeaver) Leaving() bool { return l.leaving.Load() }
func (l *fakeLeaver) PokeHandOff()  { l.pokes.Add(1) }

func joinedTestAPI(t *testing.T) (*testAPI, *fakeCluster, *fakeLeaver) {
	t.Helper()
	ta, c, l, _ := joinedTestAPIWith(t, Config{})
	return ta, c, l
}

func joinedTestAPIWith(t *testing.T, cfg Config) (*testAPI, *fakeCluster, *fakeLeaver, *fakePeerStore) {
	t.Helper()
	ta := newTestAPI(t, cfg)
	c := &fakeCluster{peers: []shard.PeerInfo{
		{Member: shard.Member{ID: "peer-0", GRPCAddr: "10.0.0.1:9092", HTTPAddr: "10.0.0.1:9091"}, State: shard.StateAlive, Self: true},
		{Member: shard.Member{ID: "peer-1", GRPCAddr: "10.0.0.2:9092", HTTPAddr: "10.0.0.2:9091"}, State: "suspect"},
		{Member: shard.Member{ID: "peer-2"}, State: shard.StateAlive}, // metadata unreadable: no address
	}}
	l := &fakeLeaver{}
	ps := &fakePeerStore{}
	peers := ingest.NewPeers()
	t.Cleanup(peers.Close)
	ta.JoinCluster(c, peers, ps, l)
	return ta, c, l, ps
}

func TestClusterTargets(t *testing.T) {
	ta, _, _ := joinedTestAPI(t)
	w := ta.do(http.MethodGet, "/api/v1/cluster/targets", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var got []sdTargetGroup
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, []sdTargetGroup{
		{Targets: []string{"10.0.0.1:9091"}, Labels: map[string]string{
			"__meta_pushring_peer": "peer-0", "__meta_pushring_peer_state": "alive", "__meta_pushring_metrics_path": "/metrics"}},
		{Targets: []string{"10.0.0.2:9091"}, Labels: map[string]string{
			"__meta_pushring_peer": "peer-1", "__meta_pushring_peer_state": "suspect", "__meta_pushring_metrics_path": "/metrics"}},
	}, got, "every peer with an address, as a Prometheus HTTP SD answer; only meta labels")
}

func TestClusterEndpointsWithoutCluster(t *testing.T) {
	ta := newTestAPI(t, Config{})
	for _, p := range []string{"/api/v1/cluster", "/api/v1/cluster/targets", "/cluster/metrics"} {
		require.Equal(t, http.StatusNotFound, ta.do(http.MethodGet, p, nil).Code, p)
	}
	require.Equal(t, http.StatusMethodNotAllowed, ta.do(http.MethodPost, "/api/v1/cluster/targets", nil).Code)
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/api/v1/metrics?scope=cluster", nil).Code, "a lone peer is the whole cluster")
}

func TestMetricsScope(t *testing.T) {
	ta := newTestAPI(t, Config{})
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/api/v1/metrics?scope=peer", nil).Code)
	w := ta.do(http.MethodGet, "/api/v1/metrics?scope=everything", nil)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), `unknown scope "everything"`)
}

func TestReadyWaitsForTheCluster(t *testing.T) {
	ta, c, l := joinedTestAPI(t)
	w := ta.do(http.MethodGet, "/-/ready", nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), "not settled")
	c.settled.Store(true)
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/-/ready", nil).Code)
	l.leaving.Store(true)
	w = ta.do(http.MethodGet, "/-/ready", nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), "leaving")
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/-/healthy", nil).Code, "health does not depend on the cluster")
}

func TestReachableAddr(t *testing.T) {
	for _, c := range []struct{ addr, host, want string }{
		{"10.0.0.1:9091", "gw:9091", "10.0.0.1:9091"},
		{"[::]:9091", "gw.example:9091", "gw.example:9091"},
		{":9091", "127.0.0.1:9091", "127.0.0.1:9091"},
		{"0.0.0.0:9091", "[::1]:9091", "[::1]:9091"},
		{"0.0.0.0:9091", "gw", "gw:9091"},
		{"[::]:9091", "", "[::]:9091"},
		{"gw-0.peers:9091", "x:1", "gw-0.peers:9091"},
	} {
		require.Equal(t, c.want, reachableAddr(c.addr, c.host), "%+v", c)
	}
}

// TestPeerServicePush: a forwarded push gets what an HTTP push would get
// here: the status, the body and the Retry-After.
func TestPeerServicePush(t *testing.T) {
	ta, _, _ := joinedTestAPI(t)
	svc := &peerService{a: ta.API}
	ta.ing.result = ingest.Result{Status: http.StatusAccepted}
	resp, err := svc.Push(context.Background(), &peerpb.PushRequest{Method: http.MethodDelete, Path: "/job/x", Ttl: "5m", Forwarded: true, Body: []byte("b")})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusAccepted), resp.GetStatusCode())
	got := ta.ing.last(t)
	require.True(t, got.Forwarded)
	require.Equal(t, "/job/x", got.Path)
	require.Equal(t, "5m", http.Header(got.Header).Get(ingest.TTLHeader))
	require.Equal(t, "b", got.body)

	ta.ing.err = &ingest.RemoteError{Code: http.StatusTooManyRequests, Body: "full", RetryAfter: 3}
	resp, err = svc.Push(context.Background(), &peerpb.PushRequest{Method: http.MethodPut, Path: "/job/x"})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusTooManyRequests), resp.GetStatusCode())
	require.Equal(t, "full", resp.GetBody())
	require.Equal(t, uint32(3), resp.GetRetryAfterSeconds())

	ta.ing.err = errors.Join(ingest.ErrOverloaded)
	resp, err = svc.Push(context.Background(), &peerpb.PushRequest{Method: http.MethodPut, Path: "/job/x"})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusServiceUnavailable), resp.GetStatusCode())
	require.Equal(t, uint32(1), resp.GetRetryAfterSeconds())
}

func TestPeerServiceHandOff(t *testing.T) {
	ta, _, l, ps := joinedTestAPIWith(t, Config{})
	svc := &peerService{a: ta.API}
	st, err := store.New(store.Config{}, nil, nil)
	require.NoError(t, err)
	k := store.NewGroupKey(map[string]string{"job": "a"})
	require.NoError(t, st.Apply(store.Push{Key: k, Families: nil}))
	gs, _ := st.Group(k)
	g, err := ingest.GroupToPB(gs)
	require.NoError(t, err)
	gone := store.NewGroupKey(map[string]string{"job": "gone"})

	resp, err := svc.HandOff(context.Background(), &peerpb.HandOffRequest{OriginPeer: "peer-1", Groups: []*peerpb.Group{
		g,
		{Key: []byte(gone.String()), Version: 9, Deleted: true},
		{Key: []byte("not a key")},
	}})
	require.NoError(t, err)
	require.Equal(t, uint32(2), resp.GetAccepted())
	require.Len(t, resp.GetRejected(), 1)
	require.Equal(t, "invalid", resp.GetRejected()[0].GetReason())
	require.Len(t, ps.received, 1)
	require.Equal(t, k, ps.received[0].Key)
	require.Equal(t, []store.GroupKey{gone}, ps.deleted)
	require.Positive(t, l.pokes.Load(), "what is not ours moves on")

	ps.receiveErr = store.ErrLimit
	resp, err = svc.HandOff(context.Background(), &peerpb.HandOffRequest{Groups: []*peerpb.Group{g}})
	require.NoError(t, err)
	require.Equal(t, "limit", resp.GetRejected()[0].GetReason())

	l.leaving.Store(true)
	_, err = svc.HandOff(context.Background(), &peerpb.HandOffRequest{Groups: []*peerpb.Group{g}})
	require.Equal(t, codes.Unavailable, status.Code(err), "a leaving peer takes nothing")
}

func TestPeerServiceWipe(t *testing.T) {
	ta, _, _, _ := joinedTestAPIWith(t, Config{})
	_, err := (&peerService{a: ta.API}).Wipe(context.Background(), &peerpb.WipeRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.Zero(t, ta.st.wiped)

	ta, _, _, _ = joinedTestAPIWith(t, Config{EnableAdminAPI: true})
	ta.st.groups = []store.GroupSnapshot{{}, {}}
	resp, err := (&peerService{a: ta.API}).Wipe(context.Background(), &peerpb.WipeRequest{})
	require.NoError(t, err)
	require.Equal(t, uint64(2), resp.GetGroups())
}

// TestClusterViewsBounded: while the most cluster-wide views are being
// built, another gets 503 at once.
func TestClusterViewsBounded(t *testing.T) {
	ta, _, _ := joinedTestAPI(t)
	for range maxClusterViews {
		ta.views <- struct{}{}
	}
	for _, p := range []string{"/cluster/metrics", "/api/v1/metrics?scope=cluster"} {
		w := ta.do(http.MethodGet, p, nil)
		require.Equal(t, http.StatusServiceUnavailable, w.Code, p)
		require.Equal(t, "1", w.Header().Get("Retry-After"))
		require.Contains(t, w.Body.String(), "cluster-wide views")
	}
	<-ta.views
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/cluster/metrics", nil).Code, "a free slot: served (peers without an address are named missing)")
}
