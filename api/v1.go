package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/pushring/pushring/store"
)

// corsHeaders are set on the JSON API's status, metrics and OPTIONS answers
// (not on wipe), with the Pushgateway's values.
var corsHeaders = [][2]string{
	{"Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, Origin"},
	{"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"},
	{"Access-Control-Allow-Origin", "*"},
	{"Access-Control-Expose-Headers", "Date"},
	{"Cache-Control", "no-cache, no-store, must-revalidate"},
}

func setCORS(w http.ResponseWriter) {
	for _, h := range corsHeaders {
		w.Header().Set(h[0], h[1])
	}
}

// apiRoutes are the routes below <prefix>/api/v1/. The catch-all answers
// what Go's mux would get wrong here: the OPTIONS catch-all would turn every
// unknown path into a 405, while the Pushgateway answers 404 for unknown
// paths (and for wipe when the admin API is off) and 405 for a known path
// with a wrong method.
func (a *API) apiRoutes() []route {
	rs := []route{
		{"GET /api/v1/status", "api/v1/status", a.serve(a.v1Status)},
		{"GET /api/v1/metrics", "api/v1/metrics", a.serve(a.v1Metrics)},
		{"OPTIONS /api/v1/{path...}", "api/v1/options", a.serve(v1Options)},
		{" /api/v1/{path...}", routeOther, a.serve(a.v1Fallback)},
	}
	if a.cfg.EnableAdminAPI {
		rs = append(rs, route{"PUT /api/v1/admin/wipe", "wipe", a.serve(a.v1Wipe)})
	}
	return rs
}

// v1Methods returns the methods a path below /api/v1/ accepts, or nil for
// an unknown path.
func (a *API) v1Methods(sub string) []string {
	switch {
	case sub == "status", sub == "metrics", sub == "cluster", sub == "cluster/targets", sub == "cluster/locate":
		return []string{http.MethodGet, http.MethodOptions}
	case sub == "admin/wipe" && a.cfg.EnableAdminAPI:
		return []string{http.MethodOptions, http.MethodPut}
	default:
		return nil
	}
}

func (a *API) v1Fallback(_ http.ResponseWriter, r *http.Request) error {
	allow := a.v1Methods(r.PathValue("path"))
	if allow == nil {
		return errNotFound
	}
	return &methodNotAllowedError{allow: strings.Join(allow, ", ")}
}

func v1Options(w http.ResponseWriter, _ *http.Request) error {
	setCORS(w)
	w.WriteHeader(http.StatusOK)
	return nil
}

// v1Response is the envelope of every JSON API answer.
type v1Response struct {
	Status   string   `json:"status"`
	Data     any      `json:"data"`
	Warnings []string `json:"warnings,omitempty"` // cluster scope: peers that did not answer
}

// v1Status serves GET /api/v1/status.
func (a *API) v1Status(w http.ResponseWriter, _ *http.Request) error {
	setCORS(w)
	return writeJSON(w, map[string]any{
		"build_information": nonNilMap(a.cfg.BuildInfo),
		"flags":             nonNilMap(a.cfg.Flags),
		"start_time":        a.cfg.StartTime,
	})
}

// v1Metrics serves GET /api/v1/metrics: one flat object per group, sorted
// by grouping key.
func (a *API) v1Metrics(w http.ResponseWriter, r *http.Request) error {
	switch scope := r.URL.Query().Get("scope"); scope {
	case "", "peer":
	case "cluster":
		return a.v1MetricsCluster(w, r)
	default:
		return &statusError{code: http.StatusBadRequest, text: fmt.Sprintf("unknown scope %q: use scope=peer (this peer's groups, the default) or scope=cluster (every peer's)", scope)}
	}
	setCORS(w)
	return a.streamGroupsJSON(w)
}

// streamGroupsJSON writes the success envelope of /api/v1/metrics group by
// group as the store hands them out, so the answer's memory is one group's
// and a write buffer, not the whole store's (a peer of 2M series once grew
// by 4 GB per request building it). The bytes are those writeJSON would
// write. A group that fails to encode after the header was sent aborts the
// connection: a truncated JSON array must not look complete.
func (a *API) streamGroupsJSON(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString(`{"status":"success","data":[`)
	var err error
	first := true
	a.store.Range(func(g store.GroupSnapshot) bool {
		var b []byte
		if b, err = json.Marshal(groupJSON(g)); err != nil {
			err = wrapf(err, "encode group %s", g.Key)
			return false
		}
		if !first {
			_ = bw.WriteByte(',')
		}
		first = false
		_, err = bw.Write(b)
		return err == nil
	})
	if err != nil {
		return wrapf(errAbort, "stream /api/v1/metrics: %v", err)
	}
	_, _ = bw.WriteString("]}")
	_ = bw.Flush()
	return nil
}

// v1Wipe serves PUT /api/v1/admin/wipe: every group is gone when the 202 is
// sent (the Pushgateway only queues the deletes). In a cluster the wipe goes
// to every peer, as it would empty the one Pushgateway this replaces; if a
// peer does not answer, the answer is 503 naming it, and the wipe (which is
// idempotent) may be sent again.
func (a *API) v1Wipe(w http.ResponseWriter, r *http.Request) error {
	n := a.store.Wipe()
	a.logger.Info("wiped the store via the admin API", "groups", n)
	others, failed := a.cluster.WipeOthers(r.Context())
	n += others
	if len(failed) > 0 {
		w.Header().Set("Retry-After", "1")
		return &statusError{code: http.StatusServiceUnavailable, text: fmt.Sprintf(
			"wiped %d groups, but not every peer's: %s; send the wipe again", n, strings.Join(failed, "; "))}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// writeJSON writes a success envelope as compact JSON without a trailing
// newline. Encoding happens before the header is written, so a failure is
// still a proper 500.
func writeJSON(w http.ResponseWriter, data any) error {
	return writeJSONValue(w, v1Response{Status: "success", Data: data})
}

// writeJSONValue writes v as compact JSON with status 200, encoding it
// before the header is written.
func writeJSONValue(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return wrapf(err, "encode json response")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
