package main

// End-to-end test with the real Prometheus (Debian's package): it finds
// the peers of a three-process cluster through the cluster's HTTP service
// discovery endpoint, scrapes each with honor_labels, and must see every
// pushed group exactly once, spread evenly over the targets, before and
// after a peer leaves.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

const (
	// prometheusBin is Debian's Prometheus (2.42 in bookworm).
	prometheusBin = "/usr/bin/prometheus"
	// promConvergeTimeout bounds each wait for Prometheus to see the
	// cluster's state: SD refresh (1s), a scrape (1s) and, after a peer
	// leaves, the end-of-run staleness of its target (just over 2 scrape
	// intervals).
	promConvergeTimeout = 60 * time.Second
	// samplesPerE2EGroup is what one pushed group of the test adds to a
	// scrape: e2e_value, push_time_seconds and push_failure_time_seconds.
	samplesPerE2EGroup = 3
	// promBalanceTolerance is how far a target's pushed samples may be from
	// the mean: rendezvous hashing of 2000 groups over 3 peers is ~±5 %.
	promBalanceTolerance = 0.10
)

// promProc is one running Prometheus.
type promProc struct {
	base   string
	client *http.Client
	cmd    *exec.Cmd
	done   chan struct{}
	exit   error // read after done is closed
	logs   *lockedBuffer
}

// prometheusConfig scrapes every peer the cluster's HTTP-SD endpoint
// lists, every second, keeping the pushed job and instance labels.
func prometheusConfig(sdURL string) string {
	return `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pushring
    honor_labels: true
    http_sd_configs:
      - url: ` + strconv.Quote(sdURL) + `
        refresh_interval: 1s
`
}

// startPrometheusWith starts the Prometheus binary bin with configuration
// config and waits until it is ready. A web port taken meanwhile shows as
// an early exit and is retried.
func startPrometheusWith(t *testing.T, bin, config string) *promProc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(config), 0o600))
	var lastErr error
	for attempt := range 3 {
		p, err := tryPrometheus(t, bin, cfg, filepath.Join(dir, fmt.Sprintf("data-%d", attempt)))
		if err == nil {
			return p
		}
		lastErr = err
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return nil
}

func tryPrometheus(t *testing.T, bin, cfg, dataDir string) (*promProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tr := &http.Transport{}
	p := &promProc{
		base:   "http://" + addr,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		cmd: exec.Command(bin,
			"--config.file="+cfg,
			"--storage.tsdb.path="+dataDir,
			"--web.listen-address="+addr,
			"--log.level=warn",
		),
		done: make(chan struct{}),
		logs: &lockedBuffer{},
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.exit = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t); tr.CloseIdleConnections() })

	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("prometheus exited during startup: %s\n%s", p.cmd.ProcessState, p.logs)
		default:
		}
		if resp, err := p.client.Get(p.base + "/-/ready"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("prometheus not ready within %s\n%s", startTimeout, p.logs)
}

// stop sends SIGTERM and waits for the exit; after stopTimeout it kills.
func (p *promProc) stop(t *testing.T) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if p.exit != nil {
				t.Logf("prometheus exited with %v after SIGTERM", p.exit)
			}
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("prometheus did not exit within %s of SIGTERM", stopTimeout)
		}
	}
	if t.Failed() {
		t.Logf("prometheus output:\n%s", tail(p.logs.String(), 4000))
	}
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// query runs an instant query at "now" and returns its vector.
func (p *promProc) query(q string) ([]promSample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	var doc struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("query %s: %d %w: %s", q, resp.StatusCode, err, tail(string(body), 300))
	}
	if doc.Status != "success" || doc.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: %s %s %s", q, doc.Status, doc.Data.ResultType, doc.Error)
	}
	out := make([]promSample, 0, len(doc.Data.Result))
	for _, r := range doc.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", q, r.Value[1], err)
		}
		out = append(out, promSample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// byInstance maps a vector by its instance label.
func byInstance(vec []promSample) map[string]float64 {
	out := make(map[string]float64, len(vec))
	for _, s := range vec {
		out[s.Metric["instance"]] = s.Value
	}
	return out
}

// addrOf is a peer's scrape target, host:port.
func addrOf(p *procPeer) string { return strings.TrimPrefix(p.base, "http://") }

// promSeesGroups checks Prometheus' view at "now": every group of want
// exactly once with its value, every live peer a healthy target, no other
// target, and the pushed samples of all targets adding up to the groups
// (a group two targets exposed would count twice there, while its series
// merge into one under honor_labels). It returns each target's pushed
// samples: scrape_samples_scraped minus the target's own series.
func promSeesGroups(p *promProc, peers []*procPeer, want map[string]float64) (map[string]float64, error) {
	n := float64(len(want))
	vec, err := p.query("count(e2e_value)")
	if err != nil {
		return nil, err
	}
	if len(vec) != 1 || vec[0].Value != n {
		return nil, fmt.Errorf("count(e2e_value) = %v, want %v", vec, n)
	}
	if vec, err = p.query("count by (job, instance) (e2e_value) > 1"); err != nil {
		return nil, err
	}
	if len(vec) != 0 {
		return nil, fmt.Errorf("%d groups counted more than once, e.g. %v", len(vec), vec[0].Metric)
	}
	if vec, err = p.query("e2e_value"); err != nil {
		return nil, err
	}
	for _, s := range vec {
		if w, ok := want[s.Metric["instance"]]; !ok || w != s.Value || s.Metric["job"] != "e2e" {
			return nil, fmt.Errorf("series %v = %v; want value %v (known instance: %t)", s.Metric, s.Value, w, ok)
		}
	}
	addrs := map[string]bool{}
	for _, q := range peers {
		addrs[addrOf(q)] = true
	}
	if vec, err = p.query(`up{job="pushring"}`); err != nil {
		return nil, err
	}
	up := byInstance(vec)
	if len(up) != len(addrs) {
		return nil, fmt.Errorf("up{job=\"pushring\"} = %v, want 1 for each of %v", up, addrs)
	}
	for a, v := range up {
		if !addrs[a] || v != 1 {
			return nil, fmt.Errorf("up{job=\"pushring\"} = %v, want 1 for each of %v", up, addrs)
		}
	}
	return pushedSamples(p, addrs, n)
}

// pushedSamples returns, per target, the samples of its last scrape that
// are not the peer's own series, and checks they add up to n groups.
func pushedSamples(p *promProc, addrs map[string]bool, n float64) (map[string]float64, error) {
	vec, err := p.query(`scrape_samples_scraped{job="pushring"}`)
	if err != nil {
		return nil, err
	}
	scraped := byInstance(vec)
	// The peer's own series keep the target's job and instance; the
	// pushed ones carry job="e2e" (honor_labels). up and scrape_* are
	// Prometheus' per-target series, not scraped samples.
	if vec, err = p.query(`count by (instance) ({job="pushring", __name__!~"up|scrape_.+"})`); err != nil {
		return nil, err
	}
	own := byInstance(vec)
	pushed := map[string]float64{}
	sum := 0.0
	for a := range addrs {
		s, ok1 := scraped[a]
		o, ok2 := own[a]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("target %s: no scrape_samples_scraped (%v) or own series (%v) yet", a, scraped, own)
		}
		pushed[a] = s - o
		sum += s - o
	}
	if len(scraped) != len(addrs) {
		return nil, fmt.Errorf("scrape_samples_scraped for %v, want only %v", scraped, addrs)
	}
	if want := samplesPerE2EGroup * n; sum != want {
		return nil, fmt.Errorf("targets scraped %v pushed samples (%v), want %v: a group is exposed twice or not at all", sum, pushed, want)
	}
	return pushed, nil
}

// checkPromBalance requires every target's pushed samples within
// promBalanceTolerance of their mean.
func checkPromBalance(t *testing.T, pushed map[string]float64) {
	t.Helper()
	mean := 0.0
	for _, v := range pushed {
		mean += v / float64(len(pushed))
	}
	for a, v := range pushed {
		require.LessOrEqual(t, math.Abs(v-mean), promBalanceTolerance*mean,
			"target %s has %v pushed samples, mean %.0f: more than %.0f%% off (%v)", a, v, mean, 100*promBalanceTolerance, pushed)
	}
}

// checkDirect compares Prometheus' per-target pushed samples with the
// groups each peer exposes on its own /metrics (exactly once overall).
func checkDirect(t *testing.T, c *procCluster, e procExpected, pushed map[string]float64) string {
	t.Helper()
	ex, err := c.exactlyOnce(t, e)
	require.NoError(t, err)
	var parts []string
	for i, p := range c.peers {
		require.Equal(t, float64(samplesPerE2EGroup*ex.perPeer[i]), pushed[addrOf(p)],
			"%s exposes %d groups; Prometheus scraped %v pushed samples from it", p.name, ex.perPeer[i], pushed[addrOf(p)])
		parts = append(parts, fmt.Sprintf("%s(%s)=%d groups/%v samples", p.name, addrOf(p), ex.perPeer[i], pushed[addrOf(p)]))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// checkSD requires the HTTP-SD answer to list every live peer once.
func checkSD(t *testing.T, sd *procPeer, peers []*procPeer) {
	t.Helper()
	st, body := sd.do(t, http.MethodGet, "/api/v1/cluster/targets", nil, nil)
	require.Equal(t, http.StatusOK, st, body)
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &groups), body)
	got, want := map[string]string{}, map[string]string{}
	for _, g := range groups {
		require.Len(t, g.Targets, 1, body)
		got[g.Targets[0]] = g.Labels["__meta_pushring_peer"]
	}
	for _, p := range peers {
		want[addrOf(p)] = p.name
	}
	require.Equal(t, want, got, body)
}

// TestPrometheusHTTPSDThreePeers lets the real Prometheus (Debian's 2.42
// and 3.16 from the module proxy, with its default settings) discover a
// three-peer cluster through /api/v1/cluster/targets and checks what it
// stores: every pushed group once with its value, the targets evenly
// loaded, and the same after one peer leaves.
func TestPrometheusHTTPSDThreePeers(t *testing.T) {
	t.Run("prometheus 2.42", func(t *testing.T) {
		requireTool(t, prometheusBin)
		t.Parallel()
		testPrometheusHTTPSD(t, prometheusBin)
	})
	t.Run("prometheus 3.16", func(t *testing.T) {
		bin := requireEnvTool(t, envPrometheus3)
		t.Parallel()
		testPrometheusHTTPSD(t, bin)
	})
}

func testPrometheusHTTPSD(t *testing.T, bin string) {
	c := startProcCluster(t, 3)
	sd := c.peers[0] // serves SD throughout; another peer leaves
	checkSD(t, sd, c.peers)
	prom := startPrometheusWith(t, bin, prometheusConfig(sd.base+"/api/v1/cluster/targets"))

	const groups, job = 2000, "e2e"
	rnd := rand.New(rand.NewPCG(3, 4))
	e := procExpected{job: job, groups: map[string]map[string]float64{}}
	want := map[string]float64{}
	var ops []procPushOp
	for i := range groups {
		inst := fmt.Sprintf("n%d", i)
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "e2e_value", Help: "The group's number."})
		g.Set(float64(i))
		ops = append(ops, procPushOp{url: c.random(rnd).base, job: job, instance: inst, method: http.MethodPut, cs: []prometheus.Collector{g}})
		e.groups[inst] = map[string]float64{"e2e_value": float64(i)}
		want[inst] = float64(i)
	}
	start := time.Now()
	procRunOps(t, procPushClient(t), ops)
	t.Logf("pushed %d groups through random peers in %s", groups, time.Since(start).Round(time.Millisecond))

	var pushed map[string]float64
	took := procConverge(t, promConvergeTimeout, func() (err error) { pushed, err = promSeesGroups(prom, c.peers, want); return err })
	t.Logf("Prometheus sees every group exactly once %s after the last push", took.Round(time.Millisecond))
	checkPromBalance(t, pushed)
	t.Logf("per target: %s", checkDirect(t, c, e, pushed))

	victim := c.peers[2]
	sent := c.sigterm(t, victim)
	exitTook := victim.waitExit(t, sent)
	procConverge(t, promConvergeTimeout, func() (err error) { pushed, err = promSeesGroups(prom, c.peers, want); return err })
	t.Logf("%s exited 0 %s after SIGTERM; Prometheus sees every group exactly once on the other two %s after SIGTERM",
		victim.name, exitTook.Round(time.Millisecond), time.Since(sent).Round(time.Millisecond))
	t.Logf("per target: %s", checkDirect(t, c, e, pushed))
	checkSD(t, sd, c.peers)
}
