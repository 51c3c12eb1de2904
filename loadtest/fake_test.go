package loadtest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// fakeGateway implements just enough of the Pushgateway API for the harness
// to run against: PUT/POST/DELETE /metrics/job/<job>{/<name>/<value>},
// GET /metrics, GET /-/ready. Its faults make the completeness check find
// something.
type fakeGateway struct {
	dropEvery   int  // acknowledge but never store every n-th group
	freezeEvery int  // store only the first push of every n-th group
	duplicate   bool // render every group twice
	honourTTL   bool // expire groups by the Pushring-TTL header
	blankPages  int  // answer the first n scrapes with no group, as a peer that is still catching up

	mu      sync.Mutex
	order   []string // group keys by first arrival
	groups  map[string]*fakeGroup
	dropped map[string]bool // groups dropEvery dropped
	frozen  map[string]bool // groups freezeEvery kept at their first push
	renders int
}

// faults returns how many groups were dropped and frozen so far.
func (g *fakeGateway) faults() (dropped, frozen int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.dropped), len(g.frozen)
}

type fakeGroup struct {
	fams    map[string]*dto.MetricFamily
	expires time.Time // zero: never
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/-/ready" || r.URL.Path == "/-/healthy":
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == "/metrics" && r.Method == http.MethodGet:
		g.render(w)
	case strings.HasPrefix(r.URL.Path, "/metrics/job/"):
		g.push(w, r)
	default:
		http.NotFound(w, r)
	}
}

// push stores, merges or deletes one group.
func (g *fakeGateway) push(w http.ResponseWriter, r *http.Request) {
	labels, err := groupingLabels(strings.TrimPrefix(r.URL.EscapedPath(), "/metrics/job/"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key := fmt.Sprint(labels)
	if r.Method == http.MethodDelete {
		g.mu.Lock()
		delete(g.groups, key)
		g.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	fams, err := decodeFamilies(r, labels)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g.store(key, fams, r.Method == http.MethodPost, ttlOf(r))
	w.WriteHeader(http.StatusOK)
}

func ttlOf(r *http.Request) time.Duration {
	d, _ := time.ParseDuration(r.Header.Get(TTLHeader))
	return d
}

func (g *fakeGateway) store(key string, fams map[string]*dto.MetricFamily, merge bool, ttl time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.groups == nil {
		g.groups, g.dropped, g.frozen = map[string]*fakeGroup{}, map[string]bool{}, map[string]bool{}
	}
	idx := slices.Index(g.order, key)
	if idx < 0 {
		idx = len(g.order)
		g.order = append(g.order, key)
	}
	old := g.groups[key]
	switch {
	case g.dropEvery > 0 && idx%g.dropEvery == 0:
		g.dropped[key] = true
		return
	case g.freezeEvery > 0 && idx%g.freezeEvery == 0 && old != nil:
		g.frozen[key] = true
		return
	}
	grp := &fakeGroup{fams: fams}
	if merge && old != nil {
		grp.fams = old.fams
		for name, mf := range fams {
			grp.fams[name] = mf
		}
	}
	if g.honourTTL && ttl > 0 {
		grp.expires = time.Now().Add(ttl)
	}
	g.groups[key] = grp
}

// render writes every live group in the text format, families merged by
// name as a real gateway does.
func (g *fakeGateway) render(w http.ResponseWriter) {
	g.mu.Lock()
	merged := map[string]*dto.MetricFamily{}
	g.renders++
	for _, grp := range g.groups {
		if g.renders <= g.blankPages {
			break
		}
		if !grp.expires.IsZero() && time.Now().After(grp.expires) {
			continue
		}
		for name, mf := range grp.fams {
			m := merged[name]
			if m == nil {
				m = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type}
				merged[name] = m
			}
			m.Metric = append(m.Metric, mf.Metric...)
			if g.duplicate {
				m.Metric = append(m.Metric, mf.Metric...)
			}
		}
	}
	g.mu.Unlock()
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, name := range slices.Sorted(maps.Keys(merged)) {
		if err := enc.Encode(merged[name]); err != nil {
			return // the client sees a truncated page, which is what a test should notice
		}
	}
}

// groupingLabels decodes "<job>{/<name>/<value>}" (plain segments only).
func groupingLabels(path string) ([][2]string, error) {
	parts := strings.Split(path, "/")
	if len(parts)%2 != 1 || parts[0] == "" {
		return nil, errors.New("odd number of grouping components")
	}
	parts = append([]string{"job"}, parts...)
	var labels [][2]string
	for i := 0; i < len(parts); i += 2 {
		v, err := url.PathUnescape(parts[i+1])
		if err != nil {
			return nil, err
		}
		labels = append(labels, [2]string{parts[i], v})
	}
	slices.SortFunc(labels, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return labels, nil
}

// decodeFamilies reads a push body and adds the grouping labels.
func decodeFamilies(r *http.Request, labels [][2]string) (map[string]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
	fams := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return fams, nil
		}
		if err != nil {
			return nil, err
		}
		for _, m := range mf.Metric {
			for _, l := range labels {
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l[0]), Value: proto.String(l[1])})
			}
		}
		fams[mf.GetName()] = mf
	}
}
