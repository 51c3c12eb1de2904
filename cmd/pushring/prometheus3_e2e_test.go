package main

// End-to-end differential test with the real Prometheus: the same pushes go
// to pushring and to Pushgateway 1.11.5, one Prometheus scrapes both with
// its default settings, and what it ingests from each (series, values,
// metric types in its metadata API, target health) must be the same.
// Prometheus 3.16 and Pushgateway 1.11.5 come from the Go module proxy,
// built by .ci/run; Prometheus 2.42 is Debian's.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pushring/pushring/internal/poll"
)

const (
	// envPrometheus3 and envPushgateway1115 name the binaries .ci/run
	// builds from the Go module proxy (.ci/peers).
	envPrometheus3     = "PUSHRING_PROMETHEUS3"
	envPushgateway1115 = "PUSHRING_PUSHGATEWAY_1115"

	// Scrape jobs of the differential Prometheus configuration.
	promJobPushgateway = "pg"
	promJobPushring    = "pr"
)

// requireEnvTool returns the executable named by environment variable env,
// skipping (or failing under CI) when it is unset or not executable.
func requireEnvTool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		missing(t, env+" is not set (.ci/peers builds the binary and sets it)")
	}
	requireTool(t, p)
	return p
}

// startPushgateway1115 starts Pushgateway 1.11.5 built from the module proxy.
func startPushgateway1115(t *testing.T, flags ...string) *gw {
	t.Helper()
	return startGateway(t, kindPushgateway, requireEnvTool(t, envPushgateway1115), flags)
}

// diffPromConfig scrapes the Pushgateway as job pg and pushring as job pr
// every second, with Prometheus' defaults otherwise (honor_labels false:
// the pushed job and instance become exported_*).
func diffPromConfig(pg, pr *gw, nativeHistograms bool) string {
	extra := ""
	if nativeHistograms {
		extra = "    scrape_native_histograms: true\n"
	}
	job := func(name string, g *gw) string {
		return "  - job_name: " + name + "\n" + extra +
			"    static_configs:\n      - targets: [" + strconv.Quote(strings.TrimPrefix(g.base, "http://")) + "]\n"
	}
	return "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" +
		job(promJobPushgateway, pg) + job(promJobPushring, pr)
}

// diffTextPush is a text push of every metric type; e2e_requests is a
// counter without the _total suffix.
const diffTextPush = `# TYPE e2e_requests_total counter
e2e_requests_total{code="200"} 5
e2e_requests_total{code="500"} 1
# HELP e2e_requests A counter without _total.
# TYPE e2e_requests counter
e2e_requests 7
# HELP e2e_temp A gauge.
# TYPE e2e_temp gauge
e2e_temp{room="a"} 21.5
# TYPE e2e_latency histogram
e2e_latency_bucket{le="0.1"} 1
e2e_latency_bucket{le="1"} 3
e2e_latency_bucket{le="+Inf"} 4
e2e_latency_sum 2.5
e2e_latency_count 4
# TYPE e2e_rpc summary
e2e_rpc{quantile="0.5"} 0.2
e2e_rpc{quantile="0.9"} 0.7
e2e_rpc_sum 3
e2e_rpc_count 9
# TYPE e2e_untyped untyped
e2e_untyped 3
`

// diffProtoFamilies is a protobuf push: a histogram with native and
// classic parts, a native-only one, a counter with a created timestamp,
// and UTF-8 metric and label names (which protobuf may always carry).
func diffProtoFamilies() []*dto.MetricFamily {
	hist := func(name string, classic bool) *dto.MetricFamily {
		h := &dto.Histogram{
			SampleCount: ptr(uint64(6)), SampleSum: ptr(7.5),
			Schema: ptr(int32(0)), ZeroThreshold: ptr(1e-128), ZeroCount: ptr(uint64(1)),
			PositiveSpan:  []*dto.BucketSpan{{Offset: ptr(int32(0)), Length: ptr(uint32(3))}},
			PositiveDelta: []int64{1, 1, -1},
			NegativeSpan:  []*dto.BucketSpan{{Offset: ptr(int32(1)), Length: ptr(uint32(1))}},
			NegativeDelta: []int64{1},
		}
		if classic {
			h.Bucket = []*dto.Bucket{
				{UpperBound: ptr(1.0), CumulativeCount: ptr(uint64(2))},
				{UpperBound: ptr(4.0), CumulativeCount: ptr(uint64(5))},
			}
		}
		return &dto.MetricFamily{Name: ptr(name), Help: ptr("A histogram."), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: h}}}
	}
	created := counterFamily("e2e_created_total", "A counter with a created timestamp.", counterMetric(4))
	created.Metric[0].Counter.CreatedTimestamp = timestamppb.New(time.Unix(1700000000, 0))
	return []*dto.MetricFamily{
		hist("e2e_native", true),
		hist("e2e_native_only", false),
		created,
		counterFamily("e2e.dotted_total", "A UTF-8 name.", counterMetric(3, "la.bel", "x")),
		gaugeFamily("e2e.gauge", "A UTF-8 gauge.", gaugeMetric(2)),
	}
}

// diffUTF8Text is a text push with quoted UTF-8 names, for gateways
// started with --push.enable-utf8-names; its URL has a U__ label name.
const (
	diffUTF8Path = "/metrics/job/e2e/instance/c/U__zone_2e_name/eu"
	diffUTF8Text = "# HELP \"e2e.text_total\" A quoted UTF-8 name.\n# TYPE \"e2e.text_total\" counter\n{\"e2e.text_total\", \"la.bel\"=\"y\"} 6\n"
)

// diffPush sends the same pushes to g; utf8Text adds the quoted-name text
// push.
func diffPush(t *testing.T, g *gw, utf8Text bool) {
	t.Helper()
	if utf8Text {
		st, body := g.do(t, http.MethodPut, diffUTF8Path, nil, []byte(diffUTF8Text))
		require.Equal(t, http.StatusOK, st, "%s UTF-8 text push: %s", g.kind, body)
	}
	st, body := g.do(t, http.MethodPut, "/metrics/job/e2e/instance/a", nil, []byte(diffTextPush))
	require.Equal(t, http.StatusOK, st, "%s text push: %s", g.kind, body)
	st, body = g.do(t, http.MethodPut, "/metrics/job/e2e/instance/b", hdrs("Content-Type", ctProto), rawProtoBody(t, diffProtoFamilies()...))
	require.Equal(t, http.StatusOK, st, "%s protobuf push: %s", g.kind, body)
	g.barrier(t)
}

// promGet fetches a Prometheus API path and decodes its data field.
func (p *promProc) promGet(path string, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	doc := struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}{}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Status != "success" {
		return fmt.Errorf("GET %s: %d %v %s: %s", path, resp.StatusCode, err, doc.Error, tail(string(body), 300))
	}
	return json.Unmarshal(doc.Data, data)
}

// promSeries returns what Prometheus holds for a scrape job at "now":
// "name{labels}" without the target's job and instance → the value (or
// native histogram) without its timestamp. Series whose value is a time of
// the gateway (push_time_seconds, ...) map to "" since the two gateways
// received the pushes at different times.
func (p *promProc) promSeries(job string) (map[string]string, error) {
	q := `{__name__=~"e2e.*|push_time_seconds|push_failure_time_seconds", job="` + job + `"}`
	var data struct {
		Result []struct {
			Metric    map[string]string `json:"metric"`
			Value     []json.RawMessage `json:"value"`
			Histogram []json.RawMessage `json:"histogram"`
		} `json:"result"`
	}
	if err := p.promGet("/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range data.Result {
		name := r.Metric["__name__"]
		var ls []string
		for k, v := range r.Metric {
			if k != "__name__" && k != "job" && k != "instance" {
				ls = append(ls, k+"="+strconv.Quote(v))
			}
		}
		sort.Strings(ls)
		v := ""
		switch {
		case strings.HasPrefix(name, "push_"):
		case len(r.Value) == 2:
			v = string(r.Value[1])
		case len(r.Histogram) == 2:
			v = string(r.Histogram[1])
		}
		out[name+"{"+strings.Join(ls, ",")+"}"] = v
	}
	return out, nil
}

// promMetadata returns metric name → "type help" of the e2e families
// Prometheus scraped from a job's target.
func (p *promProc) promMetadata(job string) (map[string]string, error) {
	var data []struct {
		Metric string `json:"metric"`
		Type   string `json:"type"`
		Help   string `json:"help"`
	}
	if err := p.promGet("/api/v1/targets/metadata?match_target="+url.QueryEscape(`{job="`+job+`"}`), &data); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, d := range data {
		if strings.HasPrefix(d.Metric, "e2e") {
			out[d.Metric] = d.Type + " " + d.Help
		}
	}
	return out, nil
}

// promTargetsHealthy requires every target up, scraped without error.
func (p *promProc) promTargetsHealthy(jobs ...string) error {
	var data struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := p.promGet("/api/v1/targets?state=active", &data); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, tg := range data.ActiveTargets {
		job := tg.Labels["job"]
		if tg.Health != "up" || tg.LastError != "" {
			return fmt.Errorf("target of job %s: health %q, last error %q", job, tg.Health, tg.LastError)
		}
		seen[job] = true
	}
	for _, j := range jobs {
		if !seen[j] {
			return fmt.Errorf("no healthy target of job %s yet (%v)", j, seen)
		}
	}
	vec, err := p.query(`up`)
	if err != nil {
		return err
	}
	for _, s := range vec {
		if s.Value != 1 {
			return fmt.Errorf("up%v = %v", s.Metric, s.Value)
		}
	}
	if len(vec) != len(jobs) {
		return fmt.Errorf("up has %d series, want %d", len(vec), len(jobs))
	}
	return nil
}

// diffView is what Prometheus ingested from one gateway.
type diffView struct {
	series, metadata map[string]string
}

// sameIngest waits until Prometheus has scraped both gateways, with
// every target healthy, and what it ingested from each is the same, and
// returns it.
func sameIngest(t *testing.T, p *promProc, wantNames []string) diffView {
	t.Helper()
	var pg, pr diffView
	poll.Until(t, promConvergeTimeout, func() (err error) {
		if err := p.promTargetsHealthy(promJobPushgateway, promJobPushring); err != nil {
			return err
		}
		if pg.series, err = p.promSeries(promJobPushgateway); err != nil {
			return err
		}
		if pr.series, err = p.promSeries(promJobPushring); err != nil {
			return err
		}
		if pg.metadata, err = p.promMetadata(promJobPushgateway); err != nil {
			return err
		}
		if pr.metadata, err = p.promMetadata(promJobPushring); err != nil {
			return err
		}
		for _, n := range wantNames {
			if _, ok := pg.metadata[n]; !ok {
				return fmt.Errorf("no metadata of %s from the Pushgateway yet: %v", n, pg.metadata)
			}
		}
		if d := mapDiff(pg.series, pr.series); d != "" {
			return fmt.Errorf("series and values, Pushgateway 1.11.5 vs pushring: %s", d)
		}
		if d := mapDiff(pg.metadata, pr.metadata); d != "" {
			return fmt.Errorf("metadata, Pushgateway 1.11.5 vs pushring: %s", d)
		}
		return nil
	})
	return pg
}

// mapDiff describes how b differs from a, or returns "".
func mapDiff(a, b map[string]string) string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			d = append(d, fmt.Sprintf("%s: %q vs %q (present: %t)", k, v, w, ok))
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok {
			d = append(d, fmt.Sprintf("%s: only pushring has it (%q)", k, w))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

// seriesNames returns the metric and label names of a promSeries key.
func seriesNames(key string) string {
	name, labels, _ := strings.Cut(strings.TrimSuffix(key, "}"), "{")
	names := []string{name}
	for _, l := range strings.Split(labels, ",") {
		n, _, _ := strings.Cut(l, "=")
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

// TestPrometheusIngestsSameAsPushgateway1115 pushes every metric type to
// Pushgateway 1.11.5 and to pushring, both with default flags, and checks
// that Prometheus ingests the same from both: 3.16 with its default
// settings (which prefer OpenMetrics; pushring answers text, as the
// Pushgateway does) and with scrape_native_histograms (protobuf), and
// Debian's 2.42 (no UTF-8 support: both must escape the UTF-8 names).
func TestPrometheusIngestsSameAsPushgateway1115(t *testing.T) {
	pgBin := requireEnvTool(t, envPushgateway1115)
	cases := []struct {
		name   string
		bin    func(t *testing.T) string
		native bool
		utf8   bool     // the scraper's chosen format asks for UTF-8 names
		flags  []string // of both gateways
	}{
		{"prometheus 3.16 defaults", func(t *testing.T) string { return requireEnvTool(t, envPrometheus3) }, false, true, nil},
		{"prometheus 3.16, gateways with --push.enable-utf8-names", func(t *testing.T) string { return requireEnvTool(t, envPrometheus3) }, false, true,
			[]string{"--push.enable-utf8-names"}},
		// Prometheus' protobuf Accept entry has no escaping parameter, so
		// the Pushgateway, and pushring, escape UTF-8 names there.
		{"prometheus 3.16 native histograms", func(t *testing.T) string { return requireEnvTool(t, envPrometheus3) }, true, false, nil},
		{"prometheus 2.42", func(t *testing.T) string { requireTool(t, prometheusBin); return prometheusBin }, false, false, nil},
		{"prometheus 2.42, gateways with --push.enable-utf8-names", func(t *testing.T) string { requireTool(t, prometheusBin); return prometheusBin }, false, false,
			[]string{"--push.enable-utf8-names"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bin := c.bin(t)
			pg := startGateway(t, kindPushgateway, pgBin, c.flags)
			pr := startPushring(t, c.flags...)
			diffPush(t, pg, len(c.flags) > 0)
			diffPush(t, pr, len(c.flags) > 0)
			prom := startPrometheusWith(t, bin, diffPromConfig(pg, pr, c.native))

			dotted, dottedSeries := "e2e.dotted_total", `e2e.dotted_total{exported_instance="b",exported_job="e2e",la.bel="x"}`
			if !c.utf8 {
				dotted, dottedSeries = "e2e_dotted_total", `e2e_dotted_total{exported_instance="b",exported_job="e2e",la_bel="x"}`
			}
			got := sameIngest(t, prom, []string{"e2e_requests", "e2e_requests_total", "e2e_temp", "e2e_latency", "e2e_rpc", "e2e_native", dotted})
			t.Logf("%d series and %d metadata entries alike", len(got.series), len(got.metadata))
			require.Equal(t, "counter A counter without _total.", got.metadata["e2e_requests"], "a counter without _total keeps its type")
			require.Equal(t, `"3"`, got.series[dottedSeries], "%v", got.series)
			if !c.utf8 {
				for s := range got.series {
					require.NotContains(t, seriesNames(s), ".", "UTF-8 names reach only a scraper that asks for them: %s", s)
				}
			}
			if len(c.flags) > 0 {
				text := `e2e.text_total{exported_instance="c",exported_job="e2e",la.bel="y",zone.name="eu"}`
				if !c.utf8 {
					text = `e2e_text_total{exported_instance="c",exported_job="e2e",la_bel="y",zone_name="eu"}`
				}
				require.Equal(t, `"6"`, got.series[text], "%v", got.series)
			}
			if c.native {
				require.Contains(t, got.series[`e2e_native{exported_instance="b",exported_job="e2e"}`], `"buckets"`, "native histogram ingested")
			}
		})
	}
}
