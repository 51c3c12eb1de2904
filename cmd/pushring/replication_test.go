package main

// Replication as processes (docs/cluster.md, "Replication"): a peer killed
// with SIGKILL loses no group, and every group is exposed by exactly one
// live peer within seconds; the survivors then restore two copies.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// failoverBound is how long after a SIGKILL every group must be exposed by
// exactly one live peer again: the dead peer is declared dead within
// crashDetectionBound, and each survivor's next scrape then exposes the
// groups it is now the first live owner of.
const failoverBound = 10 * time.Second

// TestReplicationSurvivesKill9 kills one of 3 peers holding 3,000 groups
// with SIGKILL: no group is lost, every group is exposed by exactly one
// live peer within failoverBound, and the survivors restore the second
// copy of every group.
func TestReplicationSurvivesKill9(t *testing.T) {
	runs := 1
	if n, _ := strconv.Atoi(os.Getenv("PUSHRING_FAILOVER_RUNS")); n > 0 {
		runs = n
	}
	var took []time.Duration
	for run := range runs {
		took = append(took, killOneOfThree(t, run))
	}
	slices.Sort(took)
	t.Logf("%d runs: every group exposed exactly once by a survivor %s..%s after SIGKILL (median %s)",
		runs, took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond))
}

func killOneOfThree(t *testing.T, run int) time.Duration {
	t.Helper()
	c := startProcCluster(t, 3)
	rnd := rand.New(rand.NewPCG(uint64(run), 7))
	client := procPushClient(t)
	e, ops := replicationGroups(c, rnd, "rf", 3000, 1)
	procRunOps(t, client, ops)
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })
	procConverge(t, procConvergeTimeout, func() error { return c.copies(t, 2*len(e.groups)) })

	victim := c.peers[rnd.IntN(len(c.peers))]
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	c.peers = slices.DeleteFunc(c.peers, func(q *procPeer) bool { return q == victim })
	var ex procExposure
	took := procConverge(t, failoverBound, func() (err error) { ex, err = c.exactlyOnce(t, e); return err })
	t.Logf("run %d: %s killed; every group exposed exactly once by a survivor %s after SIGKILL; groups per peer: %s",
		run, victim.name, took.Round(time.Millisecond), c.balance(ex))

	// The survivors copy the groups of which they held the only copy left.
	restored := procConverge(t, procConvergeTimeout, func() error { return c.copies(t, 2*len(e.groups)) })
	t.Logf("run %d: two copies of every group again %s later", run, restored.Round(time.Millisecond))
	for _, p := range c.peers {
		p.stop(t)
	}
	return took
}

// replicationGroups builds n groups of job, each with a gauge of value
// base*i, pushed with PUT through random peers.
func replicationGroups(c *procCluster, rnd *rand.Rand, job string, n int, base float64) (procExpected, []procPushOp) {
	e := procExpected{job: job, groups: map[string]map[string]float64{}}
	var ops []procPushOp
	for i := range n {
		inst := fmt.Sprintf("n%d", i)
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: job + "_value", Help: "The group's number."})
		g.Set(base * float64(i))
		ops = append(ops, procPushOp{url: c.random(rnd).base, job: job, instance: inst, method: http.MethodPut, cs: []prometheus.Collector{g}})
		e.groups[inst] = map[string]float64{job + "_value": base * float64(i)}
	}
	return e, ops
}

// copies reports why the live peers do not hold want group copies in all
// (each peer's own count, from /api/v1/cluster?stats=1).
func (c *procCluster) copies(t *testing.T, want int) error {
	cs, body, err := c.stats(t)
	if err != nil {
		return err
	}
	total := 0
	for _, p := range cs.Data.Peers {
		if p.Groups == nil {
			return fmt.Errorf("peer %s did not answer: %s", p.ID, p.Error)
		}
		total += *p.Groups
	}
	if total != want {
		return fmt.Errorf("the peers hold %d group copies, want %d: %s", total, want, body)
	}
	return nil
}

// freezeFor is how long TestReplicationFrozenPeer keeps its peer stopped.
const freezeFor = 20 * time.Second

// TestReplicationFrozenPeer stops one of 3 peers with SIGSTOP for 20 s
// while pushers keep pushing every group through the two others and some
// groups are deleted: at least 99 % of the pushes succeed, none waits
// much beyond --cluster.forward-timeout, and once the peer continues
// (SIGCONT) every group is exposed exactly once with its newest value and
// no deleted group comes back.
func TestReplicationFrozenPeer(t *testing.T) {
	c := startProcCluster(t, 3)
	rnd := rand.New(rand.NewPCG(3, 4))
	client := procPushClient(t)
	const n = 600
	e, ops := replicationGroups(c, rnd, "fz", n, 1)
	procRunOps(t, client, ops)
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })

	victim := c.peers[rnd.IntN(len(c.peers))]
	live := slices.DeleteFunc(slices.Clone(c.peers), func(q *procPeer) bool { return q == victim })
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	t.Cleanup(func() { _ = victim.cmd.Process.Signal(syscall.SIGCONT) })

	r := pushRoundsFor(client, live, e, n, freezeFor)
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGCONT))
	t.Logf("%s stopped for %s: %s", victim.name, time.Since(stopped).Round(time.Millisecond), r)
	require.LessOrEqual(t, float64(r.failed), 0.01*float64(r.pushes), "at most 1 %% of the pushes fail while a peer is stopped")

	took := procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })
	t.Logf("after SIGCONT: every group exposed exactly once with its newest value, no deleted group back, %s later", took.Round(time.Millisecond))
	c.waitMembers(t)
	_, err := c.exactlyOnce(t, e)
	require.NoError(t, err, "once the cluster settled")
}

// roundsResult is what pushRoundsFor saw.
type roundsResult struct {
	pushes, failed, rounds int
	slowest                time.Duration
}

func (r roundsResult) String() string {
	return fmt.Sprintf("%d pushes in %d rounds through the others, %d failed (%.2f%%); slowest %s",
		r.pushes, r.rounds, r.failed, 100*float64(r.failed)/float64(max(r.pushes, 1)), r.slowest.Round(time.Millisecond))
}

// pushRoundsFor pushes every group of e (n groups "n<i>" of job e.job,
// gauge <job>_value) through the live peers in rounds, new values each
// round, for d; a tenth of the groups is deleted in the first round. It
// keeps e up to date: the last acknowledged value of each group, and no
// deleted group.
func pushRoundsFor(client *http.Client, live []*procPeer, e procExpected, n int, d time.Duration) roundsResult {
	var r roundsResult
	deleted := map[string]bool{}
	name := e.job + "_value"
	for start := time.Now(); r.rounds == 0 || time.Since(start) < d; {
		r.rounds++
		base := float64(r.rounds + 1)
		var ops []procPushOp
		for i := range n {
			inst := fmt.Sprintf("n%d", i)
			if deleted[inst] {
				continue
			}
			url := live[(i+r.rounds)%len(live)].base
			if r.rounds == 1 && i%10 == 3 {
				deleted[inst] = true
				delete(e.groups, inst)
				ops = append(ops, procPushOp{url: url, job: e.job, instance: inst, method: http.MethodDelete})
				continue
			}
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "The group's number."})
			g.Set(base * float64(i))
			ops = append(ops, procPushOp{url: url, job: e.job, instance: inst, method: http.MethodPut, cs: []prometheus.Collector{g}})
		}
		res := procRunOpsCounting(client, ops)
		r.pushes, r.failed = r.pushes+res.done, r.failed+res.failed
		r.slowest = max(r.slowest, res.slowest)
		for inst, want := range e.groups {
			if res.ok[inst] {
				want[name] = base * float64(instIndex(inst))
			}
		}
	}
	return r
}

// procOpsResult is what procRunOpsCounting saw.
type procOpsResult struct {
	done, failed int
	slowest      time.Duration
	ok           map[string]bool // instances whose push succeeded
	errs         []error         // the first 5 failures
}

// procRunOpsCounting runs ops on procPushWorkers goroutines and counts
// the failures instead of failing the test.
func procRunOpsCounting(client *http.Client, ops []procPushOp) procOpsResult {
	work := make(chan procPushOp)
	res := procOpsResult{ok: map[string]bool{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range procPushWorkers {
		wg.Go(func() {
			for op := range work {
				start := time.Now()
				err := op.do(client)
				took := time.Since(start)
				mu.Lock()
				res.done++
				res.slowest = max(res.slowest, took)
				if err != nil {
					res.failed++
					if len(res.errs) < 5 {
						res.errs = append(res.errs, err)
					}
				} else {
					res.ok[op.instance] = true
				}
				mu.Unlock()
			}
		})
	}
	for _, op := range ops {
		work <- op
	}
	close(work)
	wg.Wait()
	return res
}

// instIndex is i of an instance named "n<i>".
func instIndex(inst string) int {
	i, _ := strconv.Atoi(inst[1:])
	return i
}

// TestReplicationRestartTakesNewestState kills one of 3 peers that write
// persistence files, pushes new values and deletes some groups while it is
// down, and restarts it on its stale file: the first scrape of the
// restarted peer, as soon as it is ready, already has only the newest
// values and no deleted group, and the cluster converges to every group
// exactly once.
func TestReplicationRestartTakesNewestState(t *testing.T) {
	dir := t.TempDir()
	c := &procCluster{label: "pushring-test-" + strconv.FormatUint(rand.Uint64(), 36), perPeer: func(name string) []string {
		return []string{"--persistence.file=" + filepath.Join(dir, name+".db"), "--persistence.interval=100ms"}
	}}
	c.start(t, 3)
	c.waitMembers(t)
	rnd := rand.New(rand.NewPCG(9, 10))
	client := procPushClient(t)
	const n = 600
	e, ops := replicationGroups(c, rnd, "rs", n, 1)
	procRunOps(t, client, ops)
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })

	victim := c.peers[rnd.IntN(len(c.peers))]
	file := filepath.Join(dir, victim.name+".db")
	procConverge(t, procConvergeTimeout, func() error { // the file holds every copy the peer holds
		held, err := c.held(t, victim.name)
		if err != nil {
			return err
		}
		groups, err := store.ReadFile(file)
		if err != nil || len(groups) != held {
			return fmt.Errorf("%s holds %d groups, its file %d (%v)", victim.name, held, len(groups), err)
		}
		return nil
	})
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	<-victim.done
	c.peers = slices.DeleteFunc(c.peers, func(q *procPeer) bool { return q == victim })
	r := pushRoundsFor(client, c.peers, e, n, time.Nanosecond) // one round: new values, a tenth deleted
	require.Zero(t, r.failed, "pushes through the survivors: %s", r)
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })

	// The same peer, same name and file, comes back.
	back, err := c.tryPeer(t, gatewayBinary(t), victim.name, victim.gossip, c.gossipAddrs())
	require.NoError(t, err)
	c.peers = append(c.peers, back)
	first, err := procScrapeAll(t, []*procPeer{back})
	require.NoError(t, err)
	stale := procStale(e, first[0])
	require.Empty(t, stale, "the restarted peer's first scrape once ready exposes older state")
	took := procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })
	t.Logf("%s restarted on its stale file: its first scrape had no stale group; every group exactly once %s after it was ready",
		back.name, took.Round(time.Millisecond))
}

// stats is the first live peer's /api/v1/cluster?stats=1, decoded, and
// its body for messages.
func (c *procCluster) stats(t *testing.T) (procClusterStatus, string, error) {
	var cs procClusterStatus
	st, body := c.peers[0].do(t, http.MethodGet, "/api/v1/cluster?stats=1", nil, nil)
	if st != http.StatusOK {
		return cs, body, fmt.Errorf("/api/v1/cluster?stats=1 answers %d: %s", st, body)
	}
	return cs, body, json.Unmarshal([]byte(body), &cs)
}

// held returns how many groups peer id holds, by /api/v1/cluster?stats=1.
func (c *procCluster) held(t *testing.T, id string) (int, error) {
	cs, body, err := c.stats(t)
	if err != nil {
		return 0, err
	}
	for _, p := range cs.Data.Peers {
		if p.ID == id && p.Groups != nil {
			return *p.Groups, nil
		}
	}
	return 0, fmt.Errorf("peer %s is not listed with its groups: %s", id, body)
}

// procStale lists the groups of e.job in exposition body that are not in
// e (deleted) or carry another value than e's.
func procStale(e procExpected, body string) []string {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return []string{err.Error()}
	}
	var stale []string
	name := e.job + "_value"
	for _, m := range mfs[name].GetMetric() {
		inst := labelValue(m, "instance")
		want, ok := e.groups[inst]
		switch {
		case !ok:
			stale = append(stale, inst+" (deleted)")
		case want[name] != procMetricValue(m):
			stale = append(stale, fmt.Sprintf("%s = %v, want %v", inst, procMetricValue(m), want[name]))
		}
	}
	return stale
}
