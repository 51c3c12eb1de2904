package api

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pushring/pushring/store"
)

// clusterData is the cluster page.
type clusterData struct {
	uiBase
	Settled, Leaving bool
	Peers            []memberView
	GroupsURL        string
}

// memberView is one member of the cluster page.
type memberView struct {
	PeerStatus
	Groups, Series string
	Joined         string
}

// clusterPage serves the members as this peer sees them, with what each
// holds; a peer that did not answer within --cluster.fanout-timeout is
// marked.
func (a *API) clusterPage(w http.ResponseWriter, r *http.Request) error {
	st := a.cluster.Status(r.Context(), true)
	d := clusterData{uiBase: a.uiBase(r, "Cluster", "cluster"), Settled: st.Settled, Leaving: st.Leaving,
		GroupsURL: a.extern + "/?scope=cluster"}
	d.Self = st.Self
	now := time.Now()
	for _, p := range st.Peers {
		mv := memberView{PeerStatus: p, Groups: optInt(p.Groups), Series: optInt(p.Series), Joined: "unknown"}
		if !p.Joined.IsZero() {
			mv.Joined = ago(now.Sub(p.Joined)) + " ago"
		}
		d.Peers = append(d.Peers, mv)
	}
	return a.render(w, http.StatusOK, "cluster", d)
}

func optInt(p *int) string {
	if p == nil {
		return "–"
	}
	return strconv.Itoa(*p)
}

// locateJSON is the answer of GET /api/v1/cluster/locate.
type locateJSON struct {
	Labels        map[string]string `json:"labels"`
	Owner         string            `json:"owner"`
	OwnerHTTPAddr string            `json:"owner_http_address"`
	Replicas      []string          `json:"replicas"`
	HeldHere      bool              `json:"held_here"`
}

// v1ClusterLocate serves GET /api/v1/cluster/locate?job=…&<label>=…: the
// peer that owns the group with these grouping labels in the current
// placement (it exposes the group and applies its pushes), its replicas,
// and whether this peer holds a copy now. The group need not exist.
func (a *API) v1ClusterLocate(w http.ResponseWriter, r *http.Request) error {
	setCORS(w)
	q := r.URL.Query()
	labels := make(map[string]string, len(q))
	var names []string
	for name, vs := range q {
		if len(vs) != 1 {
			return &statusError{code: http.StatusBadRequest, text: "grouping label " + strconv.Quote(name) + " is given " + strconv.Itoa(len(vs)) + " times; give each once"}
		}
		labels[name] = vs[0]
		names = append(names, name)
	}
	if labels["job"] == "" {
		return &statusError{code: http.StatusBadRequest, text: "locate needs the grouping labels as query parameters, job among them: /api/v1/cluster/locate?job=<job>&<label>=<value>..."}
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "" || strings.HasPrefix(n, "__") {
			return &statusError{code: http.StatusBadRequest, text: "invalid grouping label name " + strconv.Quote(n)}
		}
	}
	k := store.NewGroupKey(labels)
	loc := a.cluster.Locate(k)
	_, here := a.store.Group(k)
	return writeJSON(w, locateJSON{Labels: labels, Owner: loc.Owner, OwnerHTTPAddr: loc.OwnerHTTPAddr,
		Replicas: append([]string{}, loc.Replicas...), HeldHere: here})
}
