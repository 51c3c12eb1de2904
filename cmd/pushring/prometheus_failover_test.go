package main

// A real Prometheus through a kill -9 (docs/cluster.md, "Replication"):
// while one of three peers dies, Prometheus keeps every series with gaps
// of at most maxAbsentScrapes scrapes, never ingests a series from two
// targets at once, and counts no out-of-order or duplicate sample.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// maxAbsentScrapes bounds the consecutive 1 s scrapes a series may be
// missing from Prometheus around a kill -9.
const maxAbsentScrapes = 3

// TestPrometheusThroughKill9 runs Debian's Prometheus (1 s scrapes, HTTP
// SD) against 3 peers holding 600 groups, kills one peer with SIGKILL, and
// reads back from Prometheus every series' samples around the kill.
func TestPrometheusThroughKill9(t *testing.T) {
	requireTool(t, prometheusBin)
	c := startProcCluster(t, 3)
	sd := c.peers[0]
	prom := startPrometheusWith(t, prometheusBin, prometheusConfig(sd.base+"/api/v1/cluster/targets"))

	const groups = 600
	rnd := rand.New(rand.NewPCG(5, 6))
	want := map[string]float64{}
	var ops []procPushOp
	for i := range groups {
		inst := fmt.Sprintf("n%d", i)
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "e2e_value", Help: "The group's number."})
		g.Set(float64(i))
		ops = append(ops, procPushOp{url: c.random(rnd).base, job: "e2e", instance: inst, method: http.MethodPut, cs: []prometheus.Collector{g}})
		want[inst] = float64(i)
	}
	procRunOps(t, procPushClient(t), ops)
	procConverge(t, promConvergeTimeout, func() error { _, err := promSeesGroups(prom, c.peers, want); return err })
	// A few clean scrapes before the kill, so a gap shows as one.
	procConverge(t, promConvergeTimeout, func() error { return promScrapedAtLeast(prom, 5) })

	victim := c.peers[1+rnd.IntN(2)] // not the SD peer
	killed := time.Now()
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	c.peers = slices.DeleteFunc(c.peers, func(q *procPeer) bool { return q == victim })
	took := procConverge(t, promConvergeTimeout, func() error { _, err := promSeesGroups(prom, c.peers, want); return err })
	t.Logf("%s killed; Prometheus sees every group exactly once on the survivors %s later", victim.name, took.Round(time.Millisecond))
	// Ten more scrapes of the survivors, in which nothing may flap.
	end := time.Now().Add(10 * time.Second)
	procConverge(t, promConvergeTimeout, func() error {
		if time.Now().Before(end) {
			return fmt.Errorf("waiting until %s", end.Format(time.TimeOnly))
		}
		return nil
	})

	gaps, err := promLongestGaps(prom, "e2e_value", killed.Add(-5*time.Second), time.Now())
	require.NoError(t, err)
	require.Len(t, gaps, groups, "every series has samples around the kill")
	longest, hist := 0, map[int]int{}
	for _, g := range gaps {
		longest = max(longest, g)
		hist[g]++
	}
	t.Logf("longest run of missing 1 s steps per series around the kill: %v (steps: series)", hist)
	require.LessOrEqual(t, longest, maxAbsentScrapes, "a series was absent for more than %d consecutive scrapes", maxAbsentScrapes)

	// Prometheus' own counters, from its /metrics.
	resp, err := prom.client.Get(prom.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	for _, name := range []string{
		"prometheus_target_scrapes_sample_out_of_order_total",
		"prometheus_target_scrapes_sample_duplicate_timestamp_total",
		"prometheus_target_scrapes_sample_out_of_bounds_total",
	} {
		ms := mfs[name].GetMetric()
		require.Len(t, ms, 1, "%s in Prometheus' /metrics", name)
		require.Zero(t, ms[0].GetCounter().GetValue(), "%s: a series was ingested from two targets", name)
	}
}

// promScrapedAtLeast reports whether every pushring target has been scraped
// at least n times.
func promScrapedAtLeast(p *promProc, n int) error {
	vec, err := p.query(`count_over_time(up{job="pushring"}[1m])`)
	if err != nil {
		return err
	}
	if len(vec) == 0 {
		return fmt.Errorf("no scrape yet")
	}
	for _, s := range vec {
		if s.Value < float64(n) {
			return fmt.Errorf("target %s scraped %v times, want %d", s.Metric["instance"], s.Value, n)
		}
	}
	return nil
}

// promLongestGaps runs the range query q over [from, to] with a 1 s step
// and returns, per series (by instance), the longest run of steps without
// a sample after its first one.
func promLongestGaps(p *promProc, q string, from, to time.Time) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := url.Values{
		"query": {q},
		"start": {strconv.FormatInt(from.Unix(), 10)},
		"end":   {strconv.FormatInt(to.Unix(), 10)},
		"step":  {"1"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Status != "success" {
		return nil, fmt.Errorf("query_range %s: %v: %s", q, err, tail(string(body), 300))
	}
	out := map[string]int{}
	for _, r := range doc.Data.Result {
		longest, prev := 0, int64(0)
		for i, pair := range r.Values {
			ts, _ := pair[0].(float64)
			if i > 0 {
				longest = max(longest, int(int64(ts)-prev)-1)
			}
			prev = int64(ts)
		}
		if last := to.Unix(); prev < last {
			longest = max(longest, int(last-prev))
		}
		out[r.Metric["instance"]] = longest
	}
	return out, nil
}
