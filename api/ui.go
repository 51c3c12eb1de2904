package api

import (
	"bytes"
	"cmp"
	_ "embed" // the status page template
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/version"

	"github.com/pushring/pushring/store"
)

//go:embed ui.html
var uiTemplate string

// uiPage is the status page served at <prefix>/ and <prefix>/status.
type uiPage struct {
	tmpl *template.Template
}

func newUIPage() (*uiPage, error) {
	t, err := template.New("status").Parse(uiTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse status page template: %w", err)
	}
	return &uiPage{tmpl: t}, nil
}

// uiData is what the template shows. html/template escapes every value, so
// pushed label values cannot inject markup.
type uiData struct {
	PathPrefix    string
	TelemetryPath string
	Version       string
	StartTime     string
	Groups        []uiGroup
}

type uiGroup struct {
	Labels   []store.Label
	Families int
	LastPush string
	Failed   bool
	Expires  string // RFC 3339, or "never"
}

// statusPage serves the HTML status page. It is rendered into a buffer so a
// template failure is still a proper 500.
func (a *API) statusPage(w http.ResponseWriter, _ *http.Request) error {
	data := uiData{
		PathPrefix:    a.extern,
		TelemetryPath: a.cfg.TelemetryPath,
		Version:       cmp.Or(version.Version, "unknown"),
		StartTime:     a.cfg.StartTime.Format(time.RFC3339),
	}
	// One group at a time: the page keeps a line per group, not the
	// groups' families.
	a.store.Range(func(g store.GroupSnapshot) bool {
		data.Groups = append(data.Groups, uiGroupOf(g))
		return true
	})
	var buf bytes.Buffer
	if err := a.ui.tmpl.Execute(&buf, data); err != nil {
		return wrapf(err, "render status page")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = buf.WriteTo(w)
	return nil
}

func uiGroupOf(g store.GroupSnapshot) uiGroup {
	return uiGroup{
		Labels:   jobFirst(g.Key.Labels()),
		Families: len(g.Families),
		LastPush: lastPush(g),
		Failed:   !g.LastPushSuccessful(),
		Expires:  expires(g),
	}
}

// expires formats the group's TTL deadline; a group without one reads
// "never".
func expires(g store.GroupSnapshot) string {
	if g.Deadline.IsZero() {
		return "never"
	}
	return g.Deadline.UTC().Format(time.RFC3339)
}

// jobFirst orders grouping labels as the Pushgateway's page does: job
// first, the others by name.
func jobFirst(ls []store.Label) []store.Label {
	sort.SliceStable(ls, func(i, j int) bool {
		if (ls[i].Name == "job") != (ls[j].Name == "job") {
			return ls[i].Name == "job"
		}
		return ls[i].Name < ls[j].Name
	})
	return ls
}

// lastPush formats the group's push_time_seconds; 0 (a group created by a
// failed push) reads "never".
func lastPush(g store.GroupSnapshot) string {
	v, ok := g.TimeGauge(store.PushTimeName)
	if !ok || v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "never"
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).Format(time.RFC3339)
}
