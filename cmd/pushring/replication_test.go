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
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
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
	st, body := c.peers[0].do(t, http.MethodGet, "/api/v1/cluster?stats=1", nil, nil)
	if st != http.StatusOK {
		return fmt.Errorf("/api/v1/cluster?stats=1 answers %d: %s", st, body)
	}
	var cs procClusterStatus
	if err := json.Unmarshal([]byte(body), &cs); err != nil {
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
