package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// clusteredTestAPI is an API whose cluster has three peers, as peer-0 sees
// them: peer-2's metadata is unreadable, so it has no address.
func clusteredTestAPI(t *testing.T, cfg Config) *testAPI {
	t.Helper()
	ta := newTestAPI(t, cfg)
	groups, series := 3, 12
	ta.cl.status = ClusterStatus{Self: "peer-0", Settled: true, Peers: []PeerStatus{
		{ID: "peer-0", State: "alive", Self: true, GRPCAddr: "10.0.0.1:9092", HTTPAddr: "10.0.0.1:9091", Groups: &groups, Series: &series},
		{ID: "peer-1", State: "alive", GRPCAddr: "10.0.0.2:9092", HTTPAddr: "10.0.0.2:9091", Err: "no answer within --cluster.fanout-timeout=5s"},
		{ID: "peer-2", State: "alive"},
	}}
	return ta
}

func TestClusterTargets(t *testing.T) {
	ta := clusteredTestAPI(t, Config{})
	w := ta.do(http.MethodGet, "/api/v1/cluster/targets", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var got []sdTargetGroup
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, []sdTargetGroup{
		{Targets: []string{"10.0.0.1:9091"}, Labels: map[string]string{
			"__meta_pushring_peer": "peer-0", "__meta_pushring_peer_state": "alive", "__meta_pushring_metrics_path": "/metrics"}},
		{Targets: []string{"10.0.0.2:9091"}, Labels: map[string]string{
			"__meta_pushring_peer": "peer-1", "__meta_pushring_peer_state": "alive", "__meta_pushring_metrics_path": "/metrics"}},
	}, got, "every peer with an address, as a Prometheus HTTP SD answer; only meta labels")
}

func TestClusterStatus(t *testing.T) {
	ta := clusteredTestAPI(t, Config{})
	w := ta.do(http.MethodGet, "/api/v1/cluster", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"status":"success","data":{"self":"peer-0","settled":true,"leaving":false,"peers":[
		{"id":"peer-0","state":"alive","self":true,"leaving":false,"grpc_address":"10.0.0.1:9092","http_address":"10.0.0.1:9091","groups":3,"series":12},
		{"id":"peer-1","state":"alive","self":false,"leaving":false,"grpc_address":"10.0.0.2:9092","http_address":"10.0.0.2:9091","error":"no answer within --cluster.fanout-timeout=5s"},
		{"id":"peer-2","state":"alive","self":false,"leaving":false,"grpc_address":"","http_address":""}]}}`, w.Body.String())
}

// A peer on its own is a cluster of one: the cluster endpoints answer.
func TestClusterEndpointsOfALonePeer(t *testing.T) {
	ta := newTestAPI(t, Config{})
	for _, p := range []string{"/api/v1/cluster", "/api/v1/cluster/targets", "/cluster/metrics", "/api/v1/metrics?scope=cluster"} {
		require.Equal(t, http.StatusOK, ta.do(http.MethodGet, p, nil).Code, p)
	}
	require.Equal(t, http.StatusMethodNotAllowed, ta.do(http.MethodPost, "/api/v1/cluster/targets", nil).Code)
}

func TestMetricsScope(t *testing.T) {
	ta := newTestAPI(t, Config{})
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/api/v1/metrics?scope=peer", nil).Code)
	w := ta.do(http.MethodGet, "/api/v1/metrics?scope=everything", nil)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), `unknown scope "everything"`)
}

func TestClusterMergedViews(t *testing.T) {
	ta := clusteredTestAPI(t, Config{})
	ta.cl.groups = ClusterGroups{
		Groups:   []store.GroupSnapshot{group(map[string]string{"job": "a"}, 1, 0, gaugeFamily("g", "help", 2))},
		Missing:  []string{`peer "peer-1": no answer within --cluster.fanout-timeout=5s`},
		Answered: map[string]bool{"peer-0": true, "peer-1": false},
	}
	w := ta.do(http.MethodGet, "/cluster/metrics", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, ta.cl.groups.Missing[0], w.Header().Get(missingPeersHeader))
	body := w.Body.String()
	require.Contains(t, body, "push_time_seconds{instance=\"\",job=\"a\"} 1", "the merged group is exposed")
	require.Contains(t, body, `pushring_cluster_peer_answered{peer="peer-0"} 1`)
	require.Contains(t, body, `pushring_cluster_peer_answered{peer="peer-1"} 0`)

	w = ta.do(http.MethodGet, "/api/v1/metrics?scope=cluster", nil)
	require.Equal(t, http.StatusOK, w.Code)
	var got struct {
		Data     []map[string]any `json:"data"`
		Warnings []string         `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Len(t, got.Data, 1)
	require.Equal(t, ta.cl.groups.Missing, got.Warnings)
}

func TestWipeNamesThePeersThatDidNot(t *testing.T) {
	ta := clusteredTestAPI(t, Config{EnableAdminAPI: true})
	ta.st.groups = []store.GroupSnapshot{{}, {}}
	ta.cl.wipeGroups, ta.cl.wipeFailed = 5, []string{`peer "peer-1": unreachable`}
	w := ta.do(http.MethodPut, "/api/v1/admin/wipe", nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Equal(t, `wiped 7 groups, but not every peer's: peer "peer-1": unreachable; send the wipe again`, w.Body.String())
	ta.cl.wipeFailed = nil
	require.Equal(t, http.StatusAccepted, ta.do(http.MethodPut, "/api/v1/admin/wipe", nil).Code)
}

func TestReadyWaitsForTheCluster(t *testing.T) {
	ta := newTestAPI(t, Config{})
	ta.cl.setReady(errors.New("joining the cluster: membership not settled yet"))
	w := ta.do(http.MethodGet, "/-/ready", nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), "not settled")
	ta.cl.setReady(nil)
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/-/ready", nil).Code)
	ta.cl.setReady(errors.New("leaving the cluster"))
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

// TestClusterViewsBounded: while the most cluster-wide views are being
// built, another gets 503 at once.
func TestClusterViewsBounded(t *testing.T) {
	ta := clusteredTestAPI(t, Config{})
	for range maxClusterViews {
		ta.views <- struct{}{}
	}
	for _, p := range []string{"/cluster/metrics", "/api/v1/metrics?scope=cluster"} {
		w := ta.do(http.MethodGet, p, nil)
		require.Equal(t, http.StatusServiceUnavailable, w.Code, p)
		require.Equal(t, "1", w.Header().Get("Retry-After"))
		require.True(t, strings.Contains(w.Body.String(), "cluster-wide views"))
	}
	<-ta.views
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/cluster/metrics", nil).Code, "a free slot: served")
}
