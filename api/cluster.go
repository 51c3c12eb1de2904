package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

// Cluster is what the API needs of the cluster this peer is part of; a
// peer on its own is a cluster of one. Its methods are safe for concurrent
// use. Ready and Status without stats return at once; the others call
// every other peer, each bounded by --cluster.fanout-timeout.
type Cluster interface {
	// Ready returns nil when this peer serves as a member of its cluster,
	// or why not (it is joining, or leaving).
	Ready() error
	// Status lists the members; with stats, what each holds.
	Status(ctx context.Context, stats bool) ClusterStatus
	// Groups returns every peer's groups merged.
	Groups(ctx context.Context) ClusterGroups
	// WipeOthers empties every other peer and returns how many groups they
	// held and which peers did not wipe, with why.
	WipeOthers(ctx context.Context) (groups int, failed []string)
	// Locate says which peer owns a group in the current placement; it
	// asks no other peer.
	Locate(k store.GroupKey) GroupLocation
	// GroupsByPeer returns each live peer's groups, this peer's first,
	// without merging them.
	GroupsByPeer(ctx context.Context) []PeerGroups
}

// GroupLocation is where a group lives in the current placement.
type GroupLocation struct {
	Owner         string // peer id
	OwnerHTTPAddr string
	// Replicas are the peers that keep copies besides the owner, in the
	// order they take over; empty with --cluster.replication-factor=1.
	Replicas []string
}

// PeerGroups is the groups one peer holds, or why it did not say.
type PeerGroups struct {
	Peer   string
	Groups []store.GroupSnapshot
	Err    string // empty if every group is in
}

// PeerStatus is one member of the cluster. The binary converts the
// cluster's own type to it.
type PeerStatus struct {
	ID         string
	State      string
	Self       bool
	Leaving    bool
	GossipAddr string
	GRPCAddr   string
	HTTPAddr   string
	// Groups and Series are nil when not asked for or unknown.
	Groups, Series *int
	// Err says why the peer did not answer; empty if it did.
	Err string
	// Joined is when the peer joined, as far as this peer knows; zero:
	// unknown.
	Joined time.Time
}

// ClusterStatus is this peer's view of the cluster.
type ClusterStatus struct {
	Self    string
	Settled bool
	Leaving bool
	Peers   []PeerStatus // sorted by ID
}

// ClusterGroups is every peer's groups merged: sorted by key, each group
// once at its newest version, and the peers that did not answer.
type ClusterGroups struct {
	Groups   []store.GroupSnapshot
	Missing  []string        // per peer whose groups are not all in, why
	Answered map[string]bool // per member id, whether its groups are in
}

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

// clusterRoutes are the cluster endpoints; a peer on its own answers
// them as a cluster of one.
func (a *API) clusterRoutes() []route {
	return []route{
		{"GET /api/v1/cluster", "api/v1/cluster", a.serve(a.v1Cluster)},
		{"GET /api/v1/cluster/targets", "api/v1/cluster/targets", a.serve(a.v1ClusterTargets)},
		{"GET /api/v1/cluster/locate", "api/v1/cluster/locate", a.serve(a.v1ClusterLocate)},
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
	groups := []sdTargetGroup{}
	for _, p := range a.cluster.Status(r.Context(), false).Peers {
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
	setCORS(w)
	st := a.cluster.Status(r.Context(), true)
	peers := make([]peerStatusJSON, 0, len(st.Peers))
	for _, p := range st.Peers {
		peers = append(peers, peerStatusJSON{ID: p.ID, State: p.State, Self: p.Self, Leaving: p.Leaving,
			GossipAddr: p.GossipAddr, GRPCAddr: p.GRPCAddr, HTTPAddr: p.HTTPAddr, Groups: p.Groups, Series: p.Series, Unreachable: p.Err})
	}
	return writeJSON(w, map[string]any{
		"self":    st.Self,
		"settled": st.Settled,
		"leaving": st.Leaving,
		"peers":   peers,
	})
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
	setCORS(w)
	if !a.acquireView(w) {
		return errViewsBusy
	}
	defer a.releaseView()
	cg := a.cluster.Groups(r.Context())
	setMissingPeers(w, cg.Missing)
	return writeJSONValue(w, v1Response{Status: "success", Data: groupsJSON(cg.Groups), Warnings: cg.Missing})
}

// clusterMetrics serves GET /cluster/metrics: every peer's groups merged
// into one exposition, as a single Pushgateway would expose them, plus this
// peer's own metrics and pushring_cluster_peer_answered per peer. It
// rebuilds the merged groups on every request, so it costs O(all series):
// it is for cleanup scripts and a migration period, not for a scrape
// interval on a large cluster; Prometheus scrapes each peer's /metrics.
func (a *API) clusterMetrics(w http.ResponseWriter, r *http.Request) error {
	if !a.acquireView(w) {
		return errViewsBusy
	}
	defer a.releaseView()
	n := Negotiate(r.Header, a.cfg.PreferOpenMetrics)
	own, err := a.own.Gather()
	if err != nil {
		return &scrapeError{err: err, contentType: n.errorContentType()}
	}
	cg := a.cluster.Groups(r.Context())
	missing := cg.Missing
	reserved := make(map[string]dto.MetricType, len(own))
	for _, mf := range own {
		reserved[mf.GetName()] = mf.GetType()
	}
	merged, err := store.New(store.Config{Reserved: reserved}, nil, prometheus.NewRegistry())
	if err != nil {
		return &scrapeError{err: err, contentType: n.errorContentType()}
	}
	if err := merged.Restore(cg.Groups); err != nil {
		// Consistency is checked per peer, so two peers may hold groups
		// that clash; the merged view keeps the first in key order.
		missing = append(missing, fmt.Sprintf("groups left out of the merged view: %v", err))
	}
	own = append(own, peerAnsweredFamily(cg.Answered))
	setMissingPeers(w, missing)
	w.Header().Set("Content-Type", n.ContentType())
	if err := merged.WriteExposition(w, n.Format, own); err != nil {
		return wrapf(errAbort, "write exposition: %v", err)
	}
	return nil
}

// peerAnsweredFamily is a gauge per peer: 1 if its groups are in the
// merged view, 0 if it is silent.
func peerAnsweredFamily(answered map[string]bool) *dto.MetricFamily {
	mf := &dto.MetricFamily{
		Name: proto.String("pushring_cluster_peer_answered"),
		Help: proto.String("Whether the peer's groups are in this merged view (1) or it did not answer in time (0)."),
		Type: dto.MetricType_GAUGE.Enum(),
	}
	ids := make([]string, 0, len(answered))
	for id := range answered {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		v := 0.0
		if answered[id] {
			v = 1
		}
		mf.Metric = append(mf.Metric, &dto.Metric{
			Label: []*dto.LabelPair{{Name: proto.String("peer"), Value: proto.String(id)}},
			Gauge: &dto.Gauge{Value: proto.Float64(v)},
		})
	}
	return mf
}
