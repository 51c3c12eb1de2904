package api

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

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

type fakePeerStore struct{}

func (fakePeerStore) Receive(store.GroupSnapshot) (bool, error) { return true, nil }
func (fakePeerStore) ReceiveDelete(store.GroupKey, uint64) bool { return false }
func (fakePeerStore) Stats() (int, int)                         { return 3, 12 }

type fakeLeaver struct{ leaving atomic.Bool }

func (l *fakeLeaver) Leaving() bool { return l.leaving.Load() }

func joinedTestAPI(t *testing.T) (*testAPI, *fakeCluster, *fakeLeaver) {
	t.Helper()
	ta := newTestAPI(t, Config{})
	c := &fakeCluster{peers: []shard.PeerInfo{
		{Member: shard.Member{ID: "peer-0", GRPCAddr: "10.0.0.1:9092", HTTPAddr: "10.0.0.1:9091"}, State: shard.StateAlive, Self: true},
		{Member: shard.Member{ID: "peer-1", GRPCAddr: "10.0.0.2:9092", HTTPAddr: "10.0.0.2:9091"}, State: shard.StateSuspect},
		{Member: shard.Member{ID: "peer-2"}, State: shard.StateAlive}, // metadata unreadable: no address
	}}
	l := &fakeLeaver{}
	ta.JoinCluster(c, nil, fakePeerStore{}, l)
	return ta, c, l
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
