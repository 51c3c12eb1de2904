package api

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// maxClusterViews is how many cluster-wide views (/cluster/metrics,
// /api/v1/metrics?scope=cluster) a peer builds at once; more get 503.
const maxClusterViews = 2

// errViewsBusy refuses a cluster-wide view while maxClusterViews are being
// built.
var errViewsBusy = &statusError{code: http.StatusServiceUnavailable,
	text: fmt.Sprintf("%d cluster-wide views are being built on this peer, the most it builds at once; retry later", maxClusterViews)}

// acquireView takes a cluster-wide view slot, or reports that none is free.
func (a *API) acquireView(w http.ResponseWriter) bool {
	select {
	case a.views <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", "1")
		return false
	}
}

func (a *API) releaseView() { <-a.views }

// missingPeersHeader names, on a cluster-wide answer, the peers whose part
// is missing from it.
const missingPeersHeader = "Pushring-Missing-Peers"

// clusterRoutes are the cluster endpoints. Without a cluster they answer
// 404.
func (a *API) clusterRoutes() []route {
	return []route{
		{"GET /api/v1/cluster", "api/v1/cluster", a.serve(a.v1Cluster)},
		{"GET /api/v1/cluster/targets", "api/v1/cluster/targets", a.serve(a.v1ClusterTargets)},
		{"GET /cluster/metrics", "cluster/metrics", a.serve(a.clusterMetrics)},
	}
}

// sdTargetGroup is one entry of a Prometheus HTTP service discovery answer.
type sdTargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// v1ClusterTargets serves the Prometheus HTTP SD endpoint: one target
// group per live peer, its HTTP address the target. The labels are meta
// labels, which Prometheus drops after relabelling unless a rule keeps
// them, so a group's series carry no peer label and keep one identity
// whichever peer serves them.
func (a *API) v1ClusterTargets(w http.ResponseWriter, r *http.Request) error {
	if a.cluster == nil {
		return errNotFound
	}
	groups := []sdTargetGroup{}
	for _, p := range a.cluster.members.Peers() {
		if p.HTTPAddr == "" {
			continue
		}
		groups = append(groups, sdTargetGroup{
			Targets: []string{reachableAddr(p.HTTPAddr, r.Host)},
			Labels: map[string]string{
				"__meta_pushring_peer":         p.ID,
				"__meta_pushring_peer_state":   p.State,
				"__meta_pushring_metrics_path": a.prefix + a.cfg.TelemetryPath,
			},
		})
	}
	return writeJSONValue(w, groups)
}

// reachableAddr is addr with a wildcard host (a single peer listening on
// ":9091" advertises no host) replaced by the host the request reached this
// peer at, which the service discovery client can reach.
func reachableAddr(addr, requestHost string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); host != "" && (err != nil || !ip.IsUnspecified()) {
		return addr
	}
	rh, _, err := net.SplitHostPort(requestHost)
	if err != nil {
		rh = requestHost // no port
	}
	if rh == "" {
		return addr
	}
	return net.JoinHostPort(strings.Trim(rh, "[]"), port)
}

// peerStatusJSON is one peer of GET /api/v1/cluster.
type peerStatusJSON struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Self        bool   `json:"self"`
	Leaving     bool   `json:"leaving"`
	GossipAddr  string `json:"gossip_address,omitempty"`
	GRPCAddr    string `json:"grpc_address"`
	HTTPAddr    string `json:"http_address"`
	Groups      *int   `json:"groups,omitempty"`
	Series      *int   `json:"series,omitempty"`
	Unreachable string `json:"error,omitempty"`
}

// v1Cluster serves GET /api/v1/cluster: the members as this peer sees
// them, with the groups and series each holds.
func (a *API) v1Cluster(w http.ResponseWriter, r *http.Request) error {
	cs := a.cluster
	if cs == nil {
		return errNotFound
	}
	setCORS(w)
	remote := fanout(r.Context(), a, func(ctx context.Context, c peerpb.PeerClient) (*peerpb.StatsResponse, error) {
		return c.Stats(ctx, &peerpb.StatsRequest{})
	})
	byID := map[string]fanoutResult[*peerpb.StatsResponse]{}
	for _, res := range remote {
		byID[res.peer.ID] = res
	}
	var peers []peerStatusJSON
	for _, p := range cs.members.Peers() {
		ps := peerStatusJSON{ID: p.ID, State: p.State, Self: p.Self, GossipAddr: p.GossipAddr, GRPCAddr: p.GRPCAddr, HTTPAddr: p.HTTPAddr}
		if p.Self {
			g, n := cs.store.Stats()
			ps.Groups, ps.Series, ps.Leaving = &g, &n, cs.leaver.Leaving()
		} else if res, ok := byID[p.ID]; ok {
			if res.err != nil {
				ps.Unreachable = describeFanoutError(res.err, a.cfg.FanoutTimeout)
			} else {
				g, n := int(res.resp.GetGroups()), int(res.resp.GetSeries())
				ps.Groups, ps.Series, ps.Leaving = &g, &n, res.resp.GetLeaving()
			}
		}
		peers = append(peers, ps)
	}
	return writeJSON(w, map[string]any{
		"self":    cs.members.Self().ID,
		"settled": cs.members.Settled(),
		"leaving": cs.leaver.Leaving(),
		"peers":   peers,
	})
}

// clusterGroups collects every peer's groups: this peer's and the others'
// over gRPC, within the fan-out deadline. A group two peers hold (in the
// moments of a hand-off) appears once, at its newest version. It returns
// the groups sorted by key and, per peer that did not answer, why.
func (a *API) clusterGroups(ctx context.Context) (groups []store.GroupSnapshot, missing []string, silent map[string]bool) {
	groups = a.store.Snapshot()
	silent = map[string]bool{}
	remote := fanout(ctx, a, func(ctx context.Context, c peerpb.PeerClient) (*peerpb.GroupsResponse, error) {
		return c.Groups(ctx, &peerpb.GroupsRequest{})
	})
	for _, res := range remote {
		if res.err != nil {
			missing = append(missing, res.problem(a.cfg.FanoutTimeout))
			silent[res.peer.ID] = true
			continue
		}
		for _, g := range res.resp.GetGroups() {
			gs, err := ingest.GroupFromPB(g)
			if err != nil {
				missing = append(missing, fmt.Sprintf("peer %q: a group does not decode: %v", res.peer.ID, err))
				silent[res.peer.ID] = true
				continue
			}
			groups = append(groups, gs)
		}
	}
	slices.SortStableFunc(groups, func(x, y store.GroupSnapshot) int {
		if c := strings.Compare(x.Key.String(), y.Key.String()); c != 0 {
			return c
		}
		return cmp.Compare(y.Version, x.Version) // newest first
	})
	groups = slices.CompactFunc(groups, func(x, y store.GroupSnapshot) bool { return x.Key == y.Key })
	return groups, missing, silent
}

// setMissingPeers names the missing parts of an answer in its header.
func setMissingPeers(w http.ResponseWriter, missing []string) {
	if len(missing) > 0 {
		w.Header().Set(missingPeersHeader, strings.Join(missing, "; "))
	}
}

// v1MetricsCluster serves GET /api/v1/metrics?scope=cluster: the groups of
// every peer, in the shape of the peer's own /api/v1/metrics. Peers that
// did not answer are listed under "warnings" (as in Prometheus' API) and in
// the Pushring-Missing-Peers header.
func (a *API) v1MetricsCluster(w http.ResponseWriter, r *http.Request) error {
	if a.cluster == nil {
		return a.v1Metrics(w, r)
	}
	setCORS(w)
	if !a.acquireView(w) {
		return errViewsBusy
	}
	defer a.releaseView()
	groups, missing, _ := a.clusterGroups(r.Context())
	setMissingPeers(w, missing)
	return writeJSONValue(w, v1Response{Status: "success", Data: groupsJSON(groups), Warnings: missing})
}

// clusterMetrics serves GET /cluster/metrics: every peer's groups merged
// into one exposition, as a single Pushgateway would expose them, plus this
// peer's own metrics and pushring_cluster_peer_answered per peer. It
// rebuilds the merged groups on every request, so it costs O(all series):
// it is for cleanup scripts and a migration period, not for a scrape
// interval on a large cluster; Prometheus scrapes each peer's /metrics.
func (a *API) clusterMetrics(w http.ResponseWriter, r *http.Request) error {
	if a.cluster == nil {
		return errNotFound
	}
	if !a.acquireView(w) {
		return errViewsBusy
	}
	defer a.releaseView()
	own, err := a.own.Gather()
	if err != nil {
		return &scrapeError{err: err}
	}
	groups, missing, silent := a.clusterGroups(r.Context())
	reserved := make(map[string]dto.MetricType, len(own))
	for _, mf := range own {
		reserved[mf.GetName()] = mf.GetType()
	}
	merged, err := store.New(store.Config{Reserved: reserved}, nil, prometheus.NewRegistry())
	if err != nil {
		return &scrapeError{err: err}
	}
	if err := merged.Restore(groups); err != nil {
		// Consistency is checked per peer, so two peers may hold groups
		// that clash; the merged view keeps the first in key order.
		missing = append(missing, fmt.Sprintf("groups left out of the merged view: %v", err))
	}
	own = append(own, a.peerAnsweredFamily(silent))
	setMissingPeers(w, missing)
	format, contentType := negotiateFormat(r.Header)
	w.Header().Set("Content-Type", contentType)
	if err := merged.WriteExposition(w, format, own); err != nil {
		return wrapf(errAbort, "write exposition: %v", err)
	}
	return nil
}

// peerAnsweredFamily is a gauge per peer: 1 if its groups are in the
// merged view, 0 if it is silent.
func (a *API) peerAnsweredFamily(silent map[string]bool) *dto.MetricFamily {
	mf := &dto.MetricFamily{
		Name: proto.String("pushring_cluster_peer_answered"),
		Help: proto.String("Whether the peer's groups are in this merged view (1) or it did not answer in time (0)."),
		Type: dto.MetricType_GAUGE.Enum(),
	}
	for _, p := range a.cluster.members.Peers() {
		v := 1.0
		if silent[p.ID] {
			v = 0
		}
		mf.Metric = append(mf.Metric, &dto.Metric{
			Label: []*dto.LabelPair{{Name: proto.String("peer"), Value: proto.String(p.ID)}},
			Gauge: &dto.Gauge{Value: proto.Float64(v)},
		})
	}
	return mf
}
