package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

const promtoolBin = "/usr/bin/promtool"

// documentedMetric is one row of the table in docs/operations.md.
type documentedMetric struct {
	typ    string
	labels []string
}

var metricRow = regexp.MustCompile("^\\| `(pushring_[a-z_]+)` \\| (counter|gauge|histogram|summary) \\|([^|]*)\\|")

// documentedMetrics reads the metric table of docs/operations.md.
func documentedMetrics(t *testing.T) map[string]documentedMetric {
	t.Helper()
	doc, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	out := map[string]documentedMetric{}
	for line := range strings.Lines(string(doc)) {
		m := metricRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var labels []string
		for l := range strings.SplitSeq(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		require.NotContainsf(t, out, m[1], "docs/operations.md lists %s twice", m[1])
		out[m[1]] = documentedMetric{typ: m[2], labels: labels}
	}
	require.NotEmpty(t, out, "no metric table found in docs/operations.md")
	return out
}

// exposedMetrics returns the pushring_* families of a scrape.
func exposedMetrics(t *testing.T, scrape string) map[string]documentedMetric {
	t.Helper()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(scrape))
	require.NoError(t, err)
	out := map[string]documentedMetric{}
	for name, f := range families {
		if !strings.HasPrefix(name, "pushring_") {
			continue
		}
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		slices.Sort(labels)
		out[name] = documentedMetric{typ: strings.ToLower(dto.MetricType_name[int32(f.GetType())]), labels: labels}
	}
	return out
}

// TestOperationsDocListsEveryMetric keeps docs/operations.md and the binary
// in step: every pushring_* family a running peer exposes is listed with
// its type and labels, and nothing else is listed. The peer serves a push,
// a refused push and a scrape first, so that counters created on first use
// exist. The scrape passes promtool's metric lint.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	g := startPushring(t)
	defer g.stop(t)
	text := http.Header{"Content-Type": {"text/plain; version=0.0.4"}}
	status, body := g.do(t, http.MethodPut, "/metrics/job/docs", text,
		[]byte("# HELP docs_runs_total Runs.\n# TYPE docs_runs_total counter\ndocs_runs_total 1\n"))
	require.Equalf(t, http.StatusOK, status, "%s", body)
	status, _ = g.do(t, http.MethodPut, "/metrics/job/docs", text, []byte("not a metric line{\n"))
	require.Equal(t, http.StatusBadRequest, status)
	g.do(t, http.MethodGet, "/metrics", nil, nil)
	status, scrape := g.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, status)

	documented, exposed := documentedMetrics(t), exposedMetrics(t, scrape)
	for name, e := range exposed {
		d, ok := documented[name]
		require.Truef(t, ok, "%s (%s, labels %v) is exposed but not in docs/operations.md", name, e.typ, e.labels)
		require.Equalf(t, e, d, "%s: exposed (want) and documented (got) differ", name)
	}
	for name := range documented {
		require.Containsf(t, exposed, name, "docs/operations.md lists %s, which a peer does not expose", name)
	}

	requireTool(t, promtoolBin)
	lint := exec.CommandContext(t.Context(), promtoolBin, "check", "metrics")
	lint.Stdin = strings.NewReader(scrape)
	var out bytes.Buffer
	lint.Stdout, lint.Stderr = &out, &out
	require.NoErrorf(t, lint.Run(), "promtool check metrics:\n%s", out.String())
}
