package main

// Black-box tests of a pushring cluster: several processes of the built
// binary gossiping on loopback, driven over HTTP only, as pushers,
// Prometheus and an operator would. They check that every group ends up
// exposed by exactly one peer (after pushes through any peer, a peer
// leaving and a peer joining) and that a pusher cannot tell which peer it
// hit (docs/cluster.md, "What a push does").

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

const (
	// procConvergeTimeout bounds every wait for the cluster to agree: a few
	// gossip rounds, a settle timeout (1s) and a hand-off on loopback.
	procConvergeTimeout = 20 * time.Second
	// procExitTimeout bounds a leaving peer's exit after SIGTERM: the leave
	// broadcast, the hand-off of its groups and the HTTP drain.
	procExitTimeout = 30 * time.Second
	// procPollInterval is how often a convergence condition is re-checked;
	// each check scrapes every peer, so not every few milliseconds.
	procPollInterval = 50 * time.Millisecond
	// procPushWorkers bounds the pushes in flight.
	procPushWorkers = 16
)

// peer is one clustered pushring process.
type procPeer struct {
	*gw
	name   string
	gossip string // gossip address, 127.0.0.1:port
}

// cluster is the set of pushring processes one test started. Every peer
// gets all other peers' gossip addresses as seeds; a cluster label of its
// own keeps a foreign test's peers out, should a seed port be reused.
type procCluster struct {
	label string
	flags []string // extra flags of every peer
	// perPeer, if set, gives the extra flags of one peer by name.
	perPeer func(name string) []string
	peers   []*procPeer // live peers, in start order
	next    int         // number of the next peer's name
}

// startProcCluster starts n peers at once and waits until every one lists
// all n as alive and is ready.
func startProcCluster(t *testing.T, n int, flags ...string) *procCluster {
	t.Helper()
	c := &procCluster{label: "pushring-test-" + strconv.FormatUint(rand.Uint64(), 36), flags: append(harnessSecureFlags(t), flags...)}
	c.start(t, n)
	c.waitMembers(t)
	return c
}

// start starts n more peers concurrently, seeded with every live peer
// and each other, and returns them once each answers /-/ready.
func (c *procCluster) start(t *testing.T, n int) []*procPeer {
	t.Helper()
	bin := gatewayBinary(t)
	names, gossips := make([]string, n), make([]string, n)
	for i := range n {
		c.next++
		names[i] = fmt.Sprintf("peer-%d", c.next)
		port, err := freePort()
		require.NoError(t, err)
		gossips[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	seeds := append(c.gossipAddrs(), gossips...)
	started, errs := make([]*procPeer, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { started[i], errs[i] = c.tryPeer(t, bin, names[i], gossips[i], seeds) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	c.peers = append(c.peers, started...)
	return started
}

// tryPeer starts one peer; an HTTP or gossip port another process took
// meanwhile makes the attempt fail, and it is retried on new ports
// (tryStart retries nothing).
func (c *procCluster) tryPeer(t *testing.T, bin, name, gossip string, seeds []string) (*procPeer, error) {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			port, perr := freePort()
			if perr != nil {
				return nil, perr
			}
			gossip = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		httpPort, perr := freePort()
		if perr != nil {
			return nil, perr
		}
		var g *gw
		if g, err = tryStart(t, kindPushring, bin, c.args(name, gossip, seeds), httpPort); err == nil {
			return &procPeer{gw: g, name: name, gossip: gossip}, nil
		}
	}
	return nil, fmt.Errorf("start %s: %w", name, err)
}

// args is the command line of one peer (tryStart adds the HTTP address).
// The gRPC port is the kernel's choice: the peer advertises the bound one.
func (c *procCluster) args(name, gossip string, seeds []string) []string {
	args := []string{
		"--cluster.listen-address=" + gossip,
		"--cluster.grpc-listen-address=127.0.0.1:0",
		"--cluster.peer-name=" + name,
		"--cluster.label=" + c.label,
		"--cluster.settle-timeout=1s",
		"--cluster.rejoin-interval=1s",
	}
	for _, s := range seeds {
		if s != gossip {
			args = append(args, "--cluster.peer="+s)
		}
	}
	if c.perPeer != nil {
		args = append(args, c.perPeer(name)...)
	}
	args = append(args, envClusterFlags()...)
	return append(args, c.flags...)
}

// envClusterFlags are flags every clustered peer of the tests gets from
// PUSHRING_TEST_CLUSTER_FLAGS (space-separated), e.g.
// --cluster.replication-factor=1 to run the cluster tests with one copy
// per group.
func envClusterFlags() []string { return strings.Fields(os.Getenv("PUSHRING_TEST_CLUSTER_FLAGS")) }

func (c *procCluster) gossipAddrs() []string {
	var out []string
	for _, p := range c.peers {
		out = append(out, p.gossip)
	}
	return out
}

func (c *procCluster) names() []string {
	var out []string
	for _, p := range c.peers {
		out = append(out, p.name)
	}
	sort.Strings(out)
	return out
}

// random returns a random live peer.
func (c *procCluster) random(rnd *rand.Rand) *procPeer { return c.peers[rnd.IntN(len(c.peers))] }

// sigterm sends p SIGTERM and drops it from the live peers; it returns
// when the signal went out.
func (c *procCluster) sigterm(t *testing.T, p *procPeer) time.Time {
	t.Helper()
	sent := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	c.peers = slices.DeleteFunc(c.peers, func(q *procPeer) bool { return q == p })
	return sent
}

// waitExit requires p to exit with status 0 within procExitTimeout of
// sent, and returns how long after sent it exited.
func (p *procPeer) waitExit(t *testing.T, sent time.Time) time.Duration {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Until(sent.Add(procExitTimeout))):
		t.Fatalf("%s did not exit within %s of SIGTERM\n%s", p.name, procExitTimeout, tail(p.logs.String(), 8000))
	}
	took := time.Since(sent)
	require.NoError(t, p.exit, "%s exit status after SIGTERM\n%s", p.name, tail(p.logs.String(), 8000))
	return took
}

// procClusterStatus is GET /api/v1/cluster.
type procClusterStatus struct {
	Status string `json:"status"`
	Data   struct {
		Self    string `json:"self"`
		Settled bool   `json:"settled"`
		Leaving bool   `json:"leaving"`
		Peers   []struct {
			ID      string `json:"id"`
			State   string `json:"state"`
			Leaving bool   `json:"leaving"`
			Groups  *int   `json:"groups"`
			Error   string `json:"error"`
		} `json:"peers"`
	} `json:"data"`
}

// waitMembers polls until every live peer is ready, settled and lists
// exactly the live peers, all alive and answering.
func (c *procCluster) waitMembers(t *testing.T) {
	t.Helper()
	want := c.names()
	procConverge(t, procConvergeTimeout, func() error {
		for _, p := range c.peers {
			if err := p.membersAre(t, want); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
		return nil
	})
}

func (p *procPeer) membersAre(t *testing.T, want []string) error {
	if st, _ := p.do(t, http.MethodGet, "/-/ready", nil, nil); st != http.StatusOK {
		return fmt.Errorf("/-/ready answers %d", st)
	}
	st, body := p.do(t, http.MethodGet, "/api/v1/cluster", nil, nil)
	if st != http.StatusOK {
		return fmt.Errorf("/api/v1/cluster answers %d: %s", st, body)
	}
	var cs procClusterStatus
	if err := json.Unmarshal([]byte(body), &cs); err != nil {
		return fmt.Errorf("/api/v1/cluster: %w: %s", err, body)
	}
	if cs.Status != "success" || !cs.Data.Settled || cs.Data.Leaving || cs.Data.Self != p.name {
		return fmt.Errorf("/api/v1/cluster: not settled or not itself: %s", body)
	}
	var got []string
	for _, m := range cs.Data.Peers {
		if m.State != "alive" || m.Leaving || m.Error != "" || m.Groups == nil {
			return fmt.Errorf("member %s is not alive and answering: %s", m.ID, body)
		}
		got = append(got, m.ID)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("members %v, want %v", got, want)
	}
	return nil
}

// converge polls f until it returns nil, failing the test with f's last
// error after within; it returns how long that took.
func procConverge(t *testing.T, within time.Duration, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(procPollInterval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("not converged within %s: %v", within, err)
		}
		<-tick.C
	}
}

// ---- pushing ----

// procPushClient is the HTTP client the pushers use: its own transport, so
// its connections close with the test, and a timeout, as every pusher
// should have.
func procPushClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: procPushWorkers}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// procPushOp is one client_golang push call.
type procPushOp struct {
	url      string // a peer's base URL
	job      string
	instance string
	method   string // http.MethodPut (Push), MethodPost (Add) or MethodDelete (Delete)
	cs       []prometheus.Collector
}

func (op procPushOp) do(client *http.Client) error {
	p := push.New(op.url, op.job).Grouping("instance", op.instance).Client(client)
	for _, c := range op.cs {
		p = p.Collector(c)
	}
	var err error
	switch op.method {
	case http.MethodPut:
		err = p.Push()
	case http.MethodPost:
		err = p.Add()
	case http.MethodDelete:
		err = p.Delete() // an error unless 202
	default:
		err = fmt.Errorf("unknown method %q", op.method)
	}
	if err != nil {
		return fmt.Errorf("%s instance=%s via %s: %w", op.method, op.instance, op.url, err)
	}
	return nil
}

// procRunOps runs ops on procPushWorkers goroutines and requires every one to
// succeed.
func procRunOps(t *testing.T, client *http.Client, ops []procPushOp) {
	t.Helper()
	if res := procRunOpsCounting(client, ops); res.failed > 0 {
		t.Fatalf("%d of %d pushes failed, e.g.: %v", res.failed, len(ops), errors.Join(res.errs...))
	}
}

// ---- exactly-once check ----

// procPushTimeFamilies are the gauges the gateway adds to every group.
var procPushTimeFamilies = []string{"push_time_seconds", "push_failure_time_seconds"}

// procExpected is what the peers must expose of one job: per instance (one
// group each), the value of each pushed family.
type procExpected struct {
	job    string
	groups map[string]map[string]float64 // instance → family → value
}

// families lists every family a group of e has.
func (e procExpected) families() []string {
	seen := map[string]bool{}
	for _, fams := range e.groups {
		for f := range fams {
			seen[f] = true
		}
	}
	out := append([]string(nil), procPushTimeFamilies...)
	for f := range seen {
		out = append(out, f)
	}
	return out
}

// procExposure is where the groups of one job were found.
type procExposure struct {
	perPeer []int // groups exposed by each exposition, in input order
	owner   map[string]int
}

// procExactlyOnce checks that the expositions (text format) together
// expose every expected group exactly once, whole on one exposition, with
// the expected values, and no other group of the job.
func procExactlyOnce(e procExpected, expositions []string) (procExposure, error) {
	ex := procExposure{perPeer: make([]int, len(expositions)), owner: map[string]int{}}
	seen := map[string]int{}           // family 0xff instance → times exposed
	where := map[string]map[int]bool{} // instance → expositions that have it
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	fams := e.families()
	for i, body := range expositions {
		parser := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			return ex, fmt.Errorf("exposition %d does not parse: %w", i, err)
		}
		for _, name := range fams {
			for _, m := range mfs[name].GetMetric() {
				if labelValue(m, "job") != e.job {
					continue
				}
				inst := labelValue(m, "instance")
				if where[inst] == nil {
					where[inst] = map[int]bool{}
				}
				where[inst][i] = true
				seen[name+"\xff"+inst]++
				want, ok := e.groups[inst]
				if !ok {
					problem("unexpected group instance=%q in exposition %d", inst, i)
					continue
				}
				if v, ok := want[name]; ok && procMetricValue(m) != v {
					problem("%s{instance=%q} = %v in exposition %d, want %v", name, inst, procMetricValue(m), i, v)
				}
			}
		}
	}
	var missing, dup int
	for inst, want := range e.groups {
		for _, name := range fams {
			_, pushed := want[name]
			if !pushed && !slices.Contains(procPushTimeFamilies, name) {
				continue
			}
			switch n := seen[name+"\xff"+inst]; {
			case n == 0:
				missing++
				if missing <= 3 {
					problem("%s{instance=%q} missing", name, inst)
				}
			case n > 1:
				dup++
				if dup <= 3 {
					problem("%s{instance=%q} exposed %d times", name, inst, n)
				}
			}
		}
		if len(where[inst]) > 1 {
			problem("group instance=%q split over expositions %v", inst, where[inst])
		}
		for i := range where[inst] {
			ex.perPeer[i]++
			ex.owner[inst] = i
		}
	}
	if len(problems) > 0 {
		shown := problems[:min(len(problems), 8)]
		return ex, fmt.Errorf("%d problems (%d series missing, %d duplicated), e.g.:\n  %s",
			len(problems), missing, dup, strings.Join(shown, "\n  "))
	}
	return ex, nil
}

func procMetricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}

// procScrapeAll returns every peer's /metrics body.
func procScrapeAll(t *testing.T, peers []*procPeer) ([]string, error) {
	var out []string
	for _, p := range peers {
		st, body := p.do(t, http.MethodGet, "/metrics", nil, nil)
		if st != http.StatusOK {
			return nil, fmt.Errorf("%s /metrics answers %d: %s", p.name, st, tail(body, 500))
		}
		out = append(out, body)
	}
	return out, nil
}

// exactlyOnce is procExactlyOnce over the live peers' /metrics.
func (c *procCluster) exactlyOnce(t *testing.T, e procExpected) (procExposure, error) {
	bodies, err := procScrapeAll(t, c.peers)
	if err != nil {
		return procExposure{}, err
	}
	return procExactlyOnce(e, bodies)
}

// balance describes per-peer group counts for the log.
func (c *procCluster) balance(ex procExposure) string {
	var parts []string
	total := 0
	for _, n := range ex.perPeer {
		total += n
	}
	for i, p := range c.peers {
		parts = append(parts, fmt.Sprintf("%s=%d (%.1f%%)", p.name, ex.perPeer[i], 100*float64(ex.perPeer[i])/float64(total)))
	}
	return strings.Join(parts, " ")
}

// ---- tests ----

// TestClusterThreeProcesses pushes through random peers of a three-peer
// cluster and checks that every group is exposed exactly once, by its
// owner alone and by the cluster-wide views, and stays so after a peer
// leaves and another joins.
func TestClusterThreeProcesses(t *testing.T) {
	t.Parallel()
	c := startProcCluster(t, 3)
	rnd := rand.New(rand.NewPCG(1, 2))
	client := procPushClient(t)

	const groups, job = 1500, "bb"
	e := procExpected{job: job, groups: map[string]map[string]float64{}}
	var ops, deletes []procPushOp
	for i := range groups {
		inst := fmt.Sprintf("n%d", i)
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "bb_value", Help: "The group's number."})
		g.Set(float64(i))
		ctr := prometheus.NewCounter(prometheus.CounterOpts{Name: "bb_pushes_total", Help: "Twice the number, plus one."})
		ctr.Add(float64(2*i + 1))
		method := http.MethodPut
		if i%2 == 1 {
			method = http.MethodPost
		}
		ops = append(ops, procPushOp{url: c.random(rnd).base, job: job, instance: inst, method: method, cs: []prometheus.Collector{g, ctr}})
		if i%15 == 7 {
			deletes = append(deletes, procPushOp{url: c.random(rnd).base, job: job, instance: inst, method: http.MethodDelete})
			continue
		}
		e.groups[inst] = map[string]float64{"bb_value": float64(i), "bb_pushes_total": float64(2*i + 1)}
	}
	start := time.Now()
	procRunOps(t, client, ops)
	procRunOps(t, client, deletes)
	t.Logf("pushed %d groups and deleted %d through random peers in %s", len(ops), len(deletes), time.Since(start).Round(time.Millisecond))

	var ex procExposure
	took := procConverge(t, procConvergeTimeout, func() (err error) { ex, err = c.exactlyOnce(t, e); return err })
	t.Logf("exactly once %s after the last delete; groups per peer: %s", took.Round(time.Millisecond), c.balance(ex))
	for i, p := range c.peers {
		share := float64(ex.perPeer[i]) / float64(len(e.groups))
		require.True(t, share >= 0.20 && share <= 0.47, "%s holds %.1f%% of the groups; want 20%%–47%% (%s)", p.name, 100*share, c.balance(ex))
	}
	procCheckClusterViews(t, c.peers[0], e)

	// The two others expose every group exactly once once the leaving
	// peer has handed its groups over, which happens before it exits.
	victim := c.peers[1]
	sent := c.sigterm(t, victim)
	procConverge(t, procConvergeTimeout, func() (err error) { ex, err = c.exactlyOnce(t, e); return err })
	handedOver := time.Since(sent)
	exitTook := victim.waitExit(t, sent)
	_, err := c.exactlyOnce(t, e)
	require.NoError(t, err, "after %s exited", victim.name)
	t.Logf("%s left: remaining peers exactly once %s after SIGTERM, exit status 0 %s after SIGTERM; groups per peer: %s",
		victim.name, handedOver.Round(time.Millisecond), exitTook.Round(time.Millisecond), c.balance(ex))
	c.waitMembers(t)
	procCheckClusterViews(t, c.peers[0], e)

	start = time.Now()
	joined := c.start(t, 1)[0]
	procConverge(t, procConvergeTimeout, func() (err error) {
		if ex, err = c.exactlyOnce(t, e); err != nil {
			return err
		}
		if ex.perPeer[len(c.peers)-1] == 0 {
			return fmt.Errorf("%s holds no group yet", joined.name)
		}
		return nil
	})
	t.Logf("%s started; exactly once including it %s after its start; groups per peer: %s",
		joined.name, time.Since(start).Round(time.Millisecond), c.balance(ex))
	c.waitMembers(t)
	procCheckClusterViews(t, joined, e)
}

// procCheckClusterViews checks that p's cluster-wide views, /cluster/metrics
// and /api/v1/metrics?scope=cluster, have every group of e exactly once.
func procCheckClusterViews(t *testing.T, p *procPeer, e procExpected) {
	t.Helper()
	procConverge(t, procConvergeTimeout, func() error {
		st, body := p.do(t, http.MethodGet, "/cluster/metrics", nil, nil)
		if st != http.StatusOK {
			return fmt.Errorf("/cluster/metrics answers %d: %s", st, tail(body, 500))
		}
		if _, err := procExactlyOnce(e, []string{body}); err != nil {
			return fmt.Errorf("/cluster/metrics: %w", err)
		}
		return nil
	})
	procConverge(t, procConvergeTimeout, func() error {
		st, body := p.do(t, http.MethodGet, "/api/v1/metrics?scope=cluster", nil, nil)
		if st != http.StatusOK {
			return fmt.Errorf("/api/v1/metrics?scope=cluster answers %d: %s", st, tail(body, 500))
		}
		groups, err := parseAPIMetrics([]byte(body)) // fails on a group listed twice
		if err != nil {
			return fmt.Errorf("/api/v1/metrics?scope=cluster: %w", err)
		}
		return procCheckAPIGroups(e, groups)
	})
}

// procCheckAPIGroups checks that the JSON API's groups of e.job are exactly
// e's, with the expected values.
func procCheckAPIGroups(e procExpected, groups map[string]apiGroup) error {
	n := 0
	for key, g := range groups {
		if g.Labels["job"] != e.job {
			continue
		}
		n++
		want, ok := e.groups[g.Labels["instance"]]
		if !ok {
			return fmt.Errorf("unexpected group %s", key)
		}
		for fam, v := range want {
			f := g.Families[fam]
			if len(f.Metrics) != 1 || !strings.HasSuffix(f.Metrics[0], " value="+fmtFloat(v)) {
				return fmt.Errorf("group %s family %s: %v, want one metric of value %v", key, fam, f.Metrics, v)
			}
		}
	}
	if n != len(e.groups) {
		return fmt.Errorf("%d groups of job %q, want %d", n, e.job, len(e.groups))
	}
	return nil
}

// TestClusterErrorsForwardedLikeLocal sends the same requests to the peer
// that owns their group and to the peers that forward them to it, and
// requires the same status and body from each: a pusher cannot tell which
// peer it hit (docs/cluster.md, "What a push does").
func TestClusterErrorsForwardedLikeLocal(t *testing.T) {
	t.Parallel()
	c := startProcCluster(t, 3, "--push.max-body-bytes=4096", "--push.max-label-value-length=64")

	// Find two groups of one owner: the type conflict needs an existing
	// group in the same shard (consistency is checked per shard).
	const job = "fwd"
	probe := procExpected{job: job, groups: map[string]map[string]float64{}}
	for i := range 12 { // 12 groups over 3 peers: some peer owns 4
		inst := fmt.Sprintf("k%d", i)
		st, body := c.peers[0].do(t, http.MethodPut, "/metrics/job/"+job+"/instance/"+inst, nil, []byte("fwd_probe 1\n"))
		require.Equal(t, http.StatusOK, st, body)
		probe.groups[inst] = map[string]float64{"fwd_probe": 1}
	}
	var ex procExposure
	procConverge(t, procConvergeTimeout, func() (err error) { ex, err = c.exactlyOnce(t, probe); return err })
	byOwner := map[int][]string{}
	for inst, i := range ex.owner {
		byOwner[i] = append(byOwner[i], inst)
	}
	ownerIdx := -1
	for i, insts := range byOwner {
		if len(insts) >= 2 && (ownerIdx < 0 || i < ownerIdx) {
			ownerIdx = i
		}
	}
	require.GreaterOrEqual(t, ownerIdx, 0, "no peer owns two of the probe groups: %v", byOwner)
	insts := byOwner[ownerIdx]
	sort.Strings(insts)
	target, sibling := insts[0], insts[1]
	owner := c.peers[ownerIdx]
	t.Logf("%s owns instance=%s and instance=%s", owner.name, target, sibling)

	path := "/metrics/job/" + job + "/instance/" + target
	st, body := owner.do(t, http.MethodPut, "/metrics/job/"+job+"/instance/"+sibling, nil, []byte("# TYPE fwd_conflict gauge\nfwd_conflict 1\n"))
	require.Equal(t, http.StatusOK, st, body)

	long := strings.Repeat("v", 65)
	cases := []struct {
		name   string
		method string
		path   string
		body   []byte
		code   int
		text   string // the body contains it
	}{
		{"push", http.MethodPut, path, []byte("# TYPE fwd_m gauge\nfwd_m 1\n"), http.StatusOK, ""},
		{"add", http.MethodPost, path, []byte("fwd_n 2\n"), http.StatusOK, ""},
		{"unparsable body", http.MethodPut, path, []byte("fwd_m{ 1\n"), http.StatusBadRequest, ""},
		{"type conflict with another group", http.MethodPut, path, []byte("# TYPE fwd_conflict counter\nfwd_conflict 1\n"),
			http.StatusBadRequest, "pushed metrics are invalid or inconsistent"},
		{"invalid base64 label value", http.MethodPut, "/metrics/job/" + job + "/instance@base64/n!t", []byte("fwd_m 1\n"),
			http.StatusBadRequest, ""},
		{"body over --push.max-body-bytes", http.MethodPut, path, []byte("fwd_m 1\n" + strings.Repeat("# filler\n", 500)),
			http.StatusRequestEntityTooLarge, "--push.max-body-bytes"},
		{"label value over --push.max-label-value-length", http.MethodPut, path, []byte(`fwd_m{a="` + long + `"} 1` + "\n"),
			http.StatusBadRequest, "--push.max-label-value-length"},
		{"timestamped sample", http.MethodPut, path, []byte("fwd_m 1 1700000000000\n"), http.StatusBadRequest, ""},
		{"delete", http.MethodDelete, path, nil, http.StatusAccepted, ""},
	}
	// The owner first, then each forwarding peer.
	order := []*procPeer{owner}
	for _, p := range c.peers {
		if p != owner {
			order = append(order, p)
		}
	}
	for _, tc := range cases {
		var first response
		for i, p := range order {
			r := p.doResp(t, tc.method, tc.path, nil, tc.body)
			if i == 0 {
				first = r
				require.Equal(t, tc.code, r.status, "%s at the owner %s: %s", tc.name, p.name, r.body)
				require.Contains(t, r.body, tc.text, "%s at the owner %s", tc.name, p.name)
				continue
			}
			require.Equal(t, first.status, r.status, "%s: status at %s (forwarding) differs from the owner's; bodies %q vs %q",
				tc.name, p.name, r.body, first.body)
			require.Equal(t, first.body, r.body, "%s: body at %s (forwarding) differs from the owner's", tc.name, p.name)
		}
		t.Logf("%s: %d %q from every peer", tc.name, first.status, tail(strings.TrimSpace(first.body), 120))
	}

	// What was refused changed nothing but failure times: every probe
	// group but the deleted one is still exposed by its owner alone.
	delete(probe.groups, target)
	probe.groups[sibling] = map[string]float64{"fwd_conflict": 1} // PUT replaced fwd_probe
	procConverge(t, procConvergeTimeout, func() (err error) { _, err = c.exactlyOnce(t, probe); return err })
}
