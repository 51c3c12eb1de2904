package main

// End-to-end tests with real push clients: client_golang's push package
// (what KubeEdge-style Go pushers use) and Debian's python prometheus_client.
// Each client pushes to pushring; where Debian's Pushgateway is installed the
// same client run is repeated against it and the normalized states must be
// equal.

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/stretchr/testify/require"
)

// goClientRun pushes with client_golang and returns the state after Push and
// Add (before Delete). It asserts what every compatible gateway must do.
func goClientRun(t *testing.T, g *gw) state {
	t.Helper()
	ops := prometheus.NewCounter(prometheus.CounterOpts{Name: "e2e_ops_total", Help: "Operations done."})
	ops.Add(3)
	temp := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "e2e_temperature_celsius", Help: "Temperature."}, []string{"sensor"})
	temp.WithLabelValues("a").Set(21.5)
	temp.WithLabelValues("b").Set(-4)
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "e2e_latency_seconds", Help: "Latency.", Buckets: []float64{1, 2}})
	for _, v := range []float64{0.5, 1.5, 3} {
		lat.Observe(v)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	pusher := func(cs ...prometheus.Collector) *push.Pusher {
		p := push.New(g.base, "e2e").
			Grouping("instance", "node-1").
			Grouping("path", "/var/tmp"). // sent as path@base64/L3Zhci90bXA
			Grouping("empty", "").        // sent as empty@base64/=
			Grouping("space", "a b").     // sent as a+b, stored literally
			Client(client)
		for _, c := range cs {
			p = p.Collector(c)
		}
		return p
	}
	labels := []string{"job", "e2e", "instance", "node-1", "path", "/var/tmp", "empty", "", "space", "a+b"}
	series := `{empty="",instance="node-1",job="e2e",path="/var/tmp",space="a+b"}`

	require.NoError(t, pusher(ops, temp, lat).Push())
	s := g.fetchState(t)
	requireGroups(t, s, key(labels...))
	requireFamilies(t, group(t, s, labels...), "e2e_ops_total", "e2e_temperature_celsius", "e2e_latency_seconds")
	requireSeries(t, s, "e2e_ops_total", "e2e_ops_total"+series+" 3")
	requireSeries(t, s, "e2e_temperature_celsius",
		`e2e_temperature_celsius{empty="",instance="node-1",job="e2e",path="/var/tmp",sensor="b",space="a+b"} -4`)
	requireSeries(t, s, "e2e_latency_seconds",
		`e2e_latency_seconds_bucket{empty="",instance="node-1",job="e2e",le="2",path="/var/tmp",space="a+b"} 2`)
	requireSeries(t, s, "e2e_latency_seconds", "e2e_latency_seconds_sum"+series+" 5")
	require.Equal(t, "COUNTER", group(t, s, labels...).Families["e2e_ops_total"].Type)

	// Add (POST) replaces only its own families.
	ops.Add(1)
	queue := prometheus.NewGauge(prometheus.GaugeOpts{Name: "e2e_queue_length", Help: "Queue."})
	queue.Set(7)
	require.NoError(t, pusher(ops, queue).Add())
	s = g.fetchState(t)
	requireFamilies(t, group(t, s, labels...), "e2e_ops_total", "e2e_temperature_celsius", "e2e_latency_seconds", "e2e_queue_length")
	requireSeries(t, s, "e2e_ops_total", "e2e_ops_total"+series+" 4")
	requireSeries(t, s, "e2e_queue_length", "e2e_queue_length"+series+" 7")
	require.True(t, group(t, s, labels...).LastPushSuccessful)

	// Delete succeeds only on exactly 202.
	require.NoError(t, pusher().Delete())
	after := g.fetchState(t)
	requireGroups(t, after)
	require.Empty(t, after.Scrape.Families)
	return s
}

func TestE2EGoClient(t *testing.T) {
	t.Parallel()
	runClient(t, goClientRun)
}

// runClient runs a client against pushring and, when it is installed (or
// required), against the Pushgateway, and compares the resulting states.
// PUSHRING_COMPAT_TARGETS narrows the run as for the differential suite.
func runClient(t *testing.T, run func(*testing.T, *gw) state) {
	t.Helper()
	var states []state
	if wantTarget(kindPushring) {
		states = append(states, run(t, startPushring(t)))
	}
	if wantTarget(kindPushgateway) {
		if _, err := os.Stat(pushgatewayBin); err != nil && os.Getenv(envRequireReal) != "1" {
			t.Logf("no %s: pushring checked alone", pushgatewayBin)
		} else {
			states = append(states, run(t, startPushgateway(t)))
		}
	}
	require.NotEmpty(t, states, "%s selects no gateway", envTargets)
	if len(states) == 2 {
		require.Equal(t, states[1], states[0], "Pushgateway (expected) vs pushring (actual)")
	}
}

// pythonScript pushes with prometheus_client's three calls. A grouping value
// with '/' is base64-encoded (padded) by the client, a space becomes '+'.
const pythonScript = `
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Summary
from prometheus_client import push_to_gateway, pushadd_to_gateway, delete_from_gateway

gw = sys.argv[1]
key = {'instance': 'node/a b', 'empty': '', 'sp': 'x y'}

reg = CollectorRegistry()
Counter('py_jobs', 'Jobs run.', registry=reg).inc(3)
g = Gauge('py_temperature', 'Temperature.', ['sensor'], registry=reg)
g.labels('a').set(4.5)
g.labels('b').set(-1)
s = Summary('py_duration_seconds', 'Duration.', registry=reg)
s.observe(2)
s.observe(4)
push_to_gateway(gw, job='pyjob', registry=reg, grouping_key=key, timeout=5)

reg2 = CollectorRegistry()
Gauge('py_extra', 'Added later.', registry=reg2).set(9)
pushadd_to_gateway(gw, job='pyjob', registry=reg2, grouping_key=key, timeout=5)

push_to_gateway(gw, job='pyjob', registry=reg2, grouping_key={'instance': 'gone/x'}, timeout=5)
delete_from_gateway(gw, job='pyjob', grouping_key={'instance': 'gone/x'}, timeout=5)
print('ok')
`

func pythonClientRun(t *testing.T, g *gw) state {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonBin, "-c", pythonScript, g.base)
	// _created series carry the wall clock; without them two runs compare.
	cmd.Env = append(os.Environ(), "PROMETHEUS_DISABLE_CREATED_SERIES=True")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "python client against %s:\n%s", g.kind, out)
	require.Equal(t, "ok\n", string(out))

	labels := []string{"job", "pyjob", "instance", "node/a b", "empty", "", "sp", "x+y"}
	series := `{empty="",instance="node/a b",job="pyjob",sp="x+y"}`
	s := g.fetchState(t)
	requireGroups(t, s, key(labels...))
	requireFamilies(t, group(t, s, labels...), "py_jobs_total", "py_temperature", "py_duration_seconds", "py_extra")
	requireSeries(t, s, "py_jobs_total", "py_jobs_total"+series+" 3")
	requireSeries(t, s, "py_temperature", `py_temperature{empty="",instance="node/a b",job="pyjob",sensor="a",sp="x+y"} 4.5`)
	requireSeries(t, s, "py_duration_seconds", "py_duration_seconds_sum"+series+" 6")
	requireSeries(t, s, "py_extra", "py_extra"+series+" 9")
	require.Equal(t, "SUMMARY", group(t, s, labels...).Families["py_duration_seconds"].Type)
	require.True(t, group(t, s, labels...).LastPushSuccessful)
	return s
}

func TestE2EPythonClient(t *testing.T) {
	t.Parallel()
	requirePythonClient(t)
	runClient(t, pythonClientRun)
}

// pythonRepeatScript pushes one registry six times, as a batch job that
// reports as it goes: labels declared out of order, series first used
// out of order, the histogram's bounds written as 1.0 and _count before
// _sum; none is how the store writes its lines.
const pythonRepeatScript = `
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway

gw = sys.argv[1]
reg = CollectorRegistry()
records = Counter('rp_records', 'Records.', ['stage', 'shard'], registry=reg)
duration = Histogram('rp_duration_seconds', 'Duration.', ['kind'], registry=reg)
progress = Gauge('rp_progress_ratio', 'Progress.', registry=reg)
for i in range(6):
    records.labels('load', 'b').inc(i + 1)
    records.labels('extract', 'a').inc(2)
    duration.labels('nightly').observe(0.25 * i)
    progress.set(i / 8)
    push_to_gateway(gw, job='repeat', registry=reg, timeout=5)
print('ok')
`

// TestE2EPythonClientRepeats: the Python client's pushes of one registry
// are applied as repeats on pushring from the third on, and leave what
// the Pushgateway holds after the same pushes.
func TestE2EPythonClientRepeats(t *testing.T) {
	t.Parallel()
	requirePythonClient(t)
	runClient(t, func(t *testing.T, g *gw) state {
		t.Helper()
		s := clientRepeats(t, g, func(ctx context.Context) *exec.Cmd {
			cmd := exec.CommandContext(ctx, pythonBin, "-c", pythonRepeatScript, g.base)
			cmd.Env = append(os.Environ(), "PROMETHEUS_DISABLE_CREATED_SERIES=True")
			return cmd
		})
		series := `{instance="",job="repeat",shard="b",stage="load"}`
		requireSeries(t, s, "rp_records_total", "rp_records_total"+series+" 21")
		requireSeries(t, s, "rp_duration_seconds", `rp_duration_seconds_sum{instance="",job="repeat",kind="nightly"} 3.75`)
		requireSeries(t, s, "rp_duration_seconds", `rp_duration_seconds_bucket{instance="",job="repeat",kind="nightly",le="1"} 5`)
		requireSeries(t, s, "rp_progress_ratio", `rp_progress_ratio{instance="",job="repeat"} 0.625`)
		return s
	})
}

// clientRepeats runs a client's program that pushes one group six times
// (its command, bounded by ctx) against g, and on pushring checks that the
// third to the sixth push were repeats; it returns g's state after.
func clientRepeats(t *testing.T, g *gw, command func(ctx context.Context) *exec.Cmd) state {
	t.Helper()
	var before float64
	if g.kind == kindPushring {
		before = g.ownValue(t, "pushring_store_repeated_pushes_total", "", "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := command(ctx).CombinedOutput()
	require.NoError(t, err, "the client against %s:\n%s", g.kind, out)
	require.Equal(t, "ok\n", string(out))
	if g.kind == kindPushring {
		require.Equal(t, 4.0, g.ownValue(t, "pushring_store_repeated_pushes_total", "", "")-before, "pushes 3 to 6 repeated")
	}
	return g.fetchState(t)
}

const (
	// nodeBin runs prom-client, the Node.js client; envPromClient names
	// the node_modules directory .ci/peers installs it into.
	nodeBin       = "/usr/bin/node"
	envPromClient = "PUSHRING_PROM_CLIENT"
)

// promClientRepeatScript pushes one registry six times with prom-client's
// Pushgateway: labels in the order they were declared, series in the
// order they were first used, le first in a bucket's labels.
const promClientRepeatScript = `
const client = require('prom-client');
const registry = new client.Registry();
const requests = new client.Counter({name: 'pc_requests_total', help: 'Requests.', labelNames: ['route', 'code'], registers: [registry]});
const latency = new client.Histogram({name: 'pc_latency_seconds', help: 'Latency.', labelNames: ['route'], buckets: [0.5, 1], registers: [registry]});
const gateway = new client.Pushgateway(process.env.GATEWAY_URL, {timeout: 5000}, registry);
(async () => {
  for (let i = 0; i < 6; i++) {
    requests.inc({route: '/b', code: '500'}, i + 1);
    requests.inc({route: '/a', code: '200'}, 2);
    latency.observe({route: '/'}, 0.25 * i);
    await gateway.push({jobName: 'repeat'});
  }
  console.log('ok');
})().catch(e => { console.error(e); process.exit(1); });
`

// TestE2EPromClientRepeats: prom-client's pushes of one registry are
// applied as repeats on pushring from the third on, and leave what the
// Pushgateway holds after the same pushes.
func TestE2EPromClientRepeats(t *testing.T) {
	t.Parallel()
	requireTool(t, nodeBin)
	modules := os.Getenv(envPromClient)
	if modules == "" {
		missing(t, envPromClient+" is not set (.ci/peers installs prom-client and sets it)")
	}
	runClient(t, func(t *testing.T, g *gw) state {
		t.Helper()
		s := clientRepeats(t, g, func(ctx context.Context) *exec.Cmd {
			cmd := exec.CommandContext(ctx, nodeBin, "-e", promClientRepeatScript)
			cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "GATEWAY_URL="+g.base)
			return cmd
		})
		requireSeries(t, s, "pc_requests_total", `pc_requests_total{code="500",instance="",job="repeat",route="/b"} 21`)
		requireSeries(t, s, "pc_requests_total", `pc_requests_total{code="200",instance="",job="repeat",route="/a"} 12`)
		requireSeries(t, s, "pc_latency_seconds", `pc_latency_seconds_sum{instance="",job="repeat",route="/"} 3.75`)
		requireSeries(t, s, "pc_latency_seconds", `pc_latency_seconds_bucket{instance="",job="repeat",le="0.5",route="/"} 3`)
		return s
	})
}
