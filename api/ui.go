package api

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/pushring/pushring/store"
)

// uiFiles are the pages' templates, style sheet and script: the binary
// serves them itself, so the UI works without access to the internet.
//
//go:embed ui/*.html ui/ui.css ui/ui.js
var uiFiles embed.FS

// uiPage holds the parsed templates of the web UI, one per page.
type uiPage struct {
	pages  map[string]*template.Template
	static http.Handler
}

// uiPageNames are the pages; each is ui/<name>.html on top of ui/base.html.
var uiPageNames = []string{"groups", "group", "status", "cluster"}

func newUIPage() (*uiPage, error) {
	base, err := template.ParseFS(uiFiles, "ui/base.html")
	if err != nil {
		return nil, fmt.Errorf("parse UI templates: %w", err)
	}
	u := &uiPage{pages: map[string]*template.Template{}}
	for _, name := range uiPageNames {
		t, err := template.Must(base.Clone()).ParseFS(uiFiles, "ui/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse UI template %s: %w", name, err)
		}
		u.pages[name] = t
	}
	static, _ := fs.Sub(uiFiles, "ui") // the directory exists
	u.static = http.FileServerFS(static)
	return u, nil
}

// uiRoutes are the web UI's pages and its static files.
func (a *API) uiRoutes() []route {
	return []route{
		{"GET /{$}", "ui/groups", a.serve(a.groupsPage)},
		{"GET /group", "ui/group", a.serve(a.groupPage)},
		{"GET /status", "ui/status", a.serve(a.statusPage)},
		{"GET /cluster", "ui/cluster", a.serve(a.clusterPage)},
		{"GET /ui/static/{file}", "ui/static", a.serve(a.uiStatic)},
	}
}

// uiStatic serves the style sheet and the script.
func (a *API) uiStatic(w http.ResponseWriter, r *http.Request) error {
	switch r.PathValue("file") {
	case "ui.css", "ui.js":
	default:
		return errNotFound
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.StripPrefix(a.prefix+"/ui/static", a.ui.static).ServeHTTP(w, r)
	return nil
}

// uiBase is what every page shows: html/template escapes every value, so
// pushed label values cannot inject markup.
type uiBase struct {
	Title         string
	Nav           string // the active item of the navigation
	Prefix        string // path prefix of links, from --web.external-url
	TelemetryPath string
	Self          string // this peer's name
}

func (a *API) uiBase(r *http.Request, title, nav string) uiBase {
	return uiBase{Title: title, Nav: nav, Prefix: a.extern, TelemetryPath: a.cfg.TelemetryPath,
		Self: a.cluster.Status(r.Context(), false).Self}
}

// render executes page with data into a buffer, so that a template failure
// is still a proper 500, and writes it with code.
func (a *API) render(w http.ResponseWriter, code int, page string, data any) error {
	var buf bytes.Buffer
	if err := a.ui.pages[page].ExecuteTemplate(&buf, "base", data); err != nil {
		return wrapf(err, "render the %s page", page)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
	return nil
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

// keyText is a grouping key as a person reads it: {job="a",x="b"}, job
// first.
func keyText(k store.GroupKey) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range jobFirst(k.Labels()) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// unixTime is a *_time_seconds gauge value as a time; ok is false for 0
// and values that are not times.
func unixTime(v float64) (time.Time, bool) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// whenText is t in UTC with how long ago (or how far ahead) it is from
// now: "2026-05-06 05:08:09 UTC (3m12s ago)".
func whenText(t, now time.Time) string {
	d := now.Sub(t)
	rel := ago(d) + " ago"
	if d < 0 {
		rel = "in " + ago(-d)
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC") + " (" + rel + ")"
}

// ago is a duration rounded for a person: 42s, 3m12s, 5h03m, 2d04h.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
