package main

// Failure detection as processes: a peer killed with SIGKILL must vanish
// from the survivors' cluster views within seconds, with the default
// memberlist timings (shard.DefaultProbeInterval and friends).

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// crashDetectionBound is how long after a SIGKILL the two survivors of a
// 3-peer cluster with the default timings may still list the dead peer.
// The worst case, in memberlist's terms, with probe interval PI = 500 ms,
// suspicion multiplier SM = 4 and gossip interval GI = 200 ms:
//
//   - a survivor probes the other two peers in a shuffled round, one per
//     PI, so the killed peer is probed again within 3 PI = 1.5 s (probed
//     first in one round and last in the next);
//   - that probe fails at its deadline, PI = 0.5 s after it went out;
//   - in a cluster of 3 no confirmation is awaited (memberlist expects
//     SM-2 = 2 of them, more than the one other survivor), so the
//     suspicion lasts SM × PI × max(1, log10 3) = 2 s;
//   - the other survivor heard the suspicion within a gossip round and
//     runs the same timer, or hears the death: GI = 0.2 s.
//
// That is 4.2 s; the remaining 0.6 s covers the 50 ms polling of the views
// and scheduling on a busy machine. memberlist's LAN defaults (PI = 1 s,
// SM = 4) cannot meet it: their probe alone fails 1 s after it went out
// and the suspicion then lasts 4 s, 5 s at the very least.
const crashDetectionBound = 4800 * time.Millisecond

// TestCrashedPeerDeclaredDead kills one of 3 peers with SIGKILL and
// requires both survivors to drop it from /api/v1/cluster and
// /api/v1/cluster/targets within crashDetectionBound; then every group
// pushed through a survivor, the dead peer's included, is accepted again.
func TestCrashedPeerDeclaredDead(t *testing.T) {
	c := startProcCluster(t, 3)
	victim := c.peers[rand.IntN(len(c.peers))]
	took := c.crash(t, victim, crashDetectionBound)
	t.Logf("%s dropped by both survivors %s after SIGKILL", victim.name, took.Round(time.Millisecond))

	client := procPushClient(t)
	for i := range 30 {
		p := c.peers[i%len(c.peers)]
		body := fmt.Sprintf("# TYPE detection_value gauge\ndetection_value %d\n", i)
		req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/metrics/job/detection/instance/i%d", p.base, i), strings.NewReader(body))
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "push %d through %s after %s was declared dead", i, p.name, victim.name)
	}
}

// crash kills p with SIGKILL, drops it from the live peers, and waits
// until every survivor has dropped it from its cluster views, failing
// the test after within. It returns how long after the signal that took.
func (c *procCluster) crash(t *testing.T, p *procPeer, within time.Duration) time.Duration {
	t.Helper()
	dead := strings.TrimPrefix(p.base, "http://")
	sent := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	c.peers = slices.DeleteFunc(c.peers, func(q *procPeer) bool { return q == p })
	procConverge(t, within, func() error {
		for _, s := range c.peers {
			if err := s.lacks(t, p.name, dead); err != nil {
				return fmt.Errorf("%s, %s after the SIGKILL: %w", s.name, time.Since(sent).Round(time.Millisecond), err)
			}
		}
		return nil
	})
	return time.Since(sent)
}

// lacks reports why p's cluster views still list the peer named name,
// whose HTTP address is addr, or nil once they do not.
func (p *procPeer) lacks(t *testing.T, name, addr string) error {
	st, body := p.do(t, http.MethodGet, "/api/v1/cluster", nil, nil)
	if st != http.StatusOK {
		return fmt.Errorf("/api/v1/cluster answers %d: %s", st, body)
	}
	var cs procClusterStatus
	if err := json.Unmarshal([]byte(body), &cs); err != nil {
		return fmt.Errorf("/api/v1/cluster: %w: %s", err, body)
	}
	for _, m := range cs.Data.Peers {
		if m.ID == name {
			return fmt.Errorf("/api/v1/cluster lists %s as %s", name, m.State)
		}
	}
	st, body = p.do(t, http.MethodGet, "/api/v1/cluster/targets", nil, nil)
	if st != http.StatusOK {
		return fmt.Errorf("/api/v1/cluster/targets answers %d: %s", st, body)
	}
	var groups []struct {
		Targets []string `json:"targets"`
	}
	if err := json.Unmarshal([]byte(body), &groups); err != nil {
		return fmt.Errorf("/api/v1/cluster/targets: %w: %s", err, body)
	}
	for _, g := range groups {
		if slices.Contains(g.Targets, addr) {
			return fmt.Errorf("/api/v1/cluster/targets lists %s", addr)
		}
	}
	return nil
}

// Environment of TestCrashDetectionMeasure.
const (
	// envDetectionRuns turns the measurement on: runs per cluster size.
	envDetectionRuns = "PUSHRING_DETECTION_RUNS"
	// envDetectionSizes lists the cluster sizes, comma-separated; default
	// 3,5,10.
	envDetectionSizes = "PUSHRING_DETECTION_SIZES"
	// envDetectionFlags adds flags to every peer, space-separated, e.g.
	// memberlist's LAN timings to measure them the same way.
	envDetectionFlags = "PUSHRING_DETECTION_FLAGS"
	// envDetectionLoad is how many pushers keep pushing through random
	// peers from the start of each cluster until the crash is detected; 0
	// or unset: none.
	envDetectionLoad = "PUSHRING_DETECTION_LOAD"
	// envDetectionSoak is how long the pushers push before the crash, e.g.
	// 2m, to count suspicions of live peers over a longer window; unset:
	// until 200 pushes per pusher were answered.
	envDetectionSoak = "PUSHRING_DETECTION_SOAK"
)

// detectionLimit bounds one measured detection: memberlist's LAN defaults
// can take up to 6 × 4 s of suspicion after the probe in a cluster that
// expects confirmations.
const detectionLimit = 60 * time.Second

// TestCrashDetectionMeasure measures, for clusters of 3, 5 and 10 peers,
// how long after a SIGKILL of a random peer every survivor has dropped it
// from its cluster views; and counts, in every peer's log over each run,
// memberlist's suspicions of a peer that was not killed and its
// declarations of such a peer's death. A false death fails the run; the
// figures are logged for BENCHMARKS.md ("Failure detection"). It runs
// only when PUSHRING_DETECTION_RUNS is set.
func TestCrashDetectionMeasure(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv(envDetectionRuns))
	if runs <= 0 {
		t.Skipf("set %s to measure failure detection", envDetectionRuns)
	}
	sizes := []int{3, 5, 10}
	if s := os.Getenv(envDetectionSizes); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(t, err, envDetectionSizes)
			sizes = append(sizes, n)
		}
	}
	flags := strings.Fields(os.Getenv(envDetectionFlags))
	load, _ := strconv.Atoi(os.Getenv(envDetectionLoad))
	var soak time.Duration
	if s := os.Getenv(envDetectionSoak); s != "" {
		var err error
		soak, err = time.ParseDuration(s)
		require.NoError(t, err, envDetectionSoak)
	}
	for _, n := range sizes {
		var took []time.Duration
		var suspicions, pushes, failed int
		for run := range runs {
			t.Run(fmt.Sprintf("peers=%d/run=%d", n, run), func(t *testing.T) {
				r := measureDetection(t, n, load, soak, flags)
				took = append(took, r.took)
				suspicions += r.suspicions
				pushes += r.pushes
				failed += r.failed
			})
		}
		if len(took) == 0 {
			continue
		}
		slices.Sort(took)
		t.Logf("%d peers, %d runs (flags %q, %d pushers): dropped by every survivor %s..%s after SIGKILL (median %s); "+
			"%d suspicions of peers that were not killed; pushes %d, failed %d",
			n, len(took), flags, load, took[0].Round(10*time.Millisecond), took[len(took)-1].Round(10*time.Millisecond),
			took[len(took)/2].Round(10*time.Millisecond), suspicions, pushes, failed)
	}
}

// detection is the outcome of one measured crash.
type detection struct {
	took       time.Duration
	suspicions int // of peers that were not killed, over the whole run
	pushes     int
	failed     int // pushes that got no 2xx (503 for the dead peer's groups until it is dropped)
}

var (
	suspectLine = regexp.MustCompile(`Suspect (\S+) has failed`)
	deathLine   = regexp.MustCompile(`Marking (\S+) as failed`)
)

// measureDetection starts n peers, kills one, and measures.
func measureDetection(t *testing.T, n, load int, soak time.Duration, flags []string) detection {
	c := startProcCluster(t, n, flags...)
	all := slices.Clone(c.peers)
	stop := make(chan struct{})
	var pushes, failed atomic.Int64
	var wg sync.WaitGroup
	client := procPushClient(t)
	urls := make([]string, len(c.peers))
	for i, p := range c.peers {
		urls[i] = p.base
	}
	victim := c.peers[rand.IntN(len(c.peers))]
	for w := range load {
		wg.Go(func() { detectionPusher(client, w, urls, victim.base, stop, &pushes, &failed) })
	}
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()
	switch {
	case soak > 0: // a measurement window, not a wait for a condition
		<-time.After(soak)
	case load > 0: // a few seconds of load before the crash
		procConverge(t, time.Minute, func() error {
			if pushes.Load() < int64(200*load) {
				return fmt.Errorf("%d pushes so far", pushes.Load())
			}
			return nil
		})
	}
	took := c.crash(t, victim, detectionLimit)
	d := detection{took: took, suspicions: falseSuspicions(t, all, victim.name)}
	halt()
	d.pushes, d.failed = int(pushes.Load()), int(failed.Load())
	t.Logf("%d peers: %s dropped after %s; %d suspicions of live peers", n, victim.name, took.Round(time.Millisecond), d.suspicions)
	return d
}

// falseSuspicions counts the suspicions of a peer other than victim in the
// logs of peers, and fails the test if any of them declared such a peer
// dead.
func falseSuspicions(t *testing.T, peers []*procPeer, victim string) int {
	t.Helper()
	n := 0
	for _, p := range peers {
		logs := p.logs.String()
		for _, m := range suspectLine.FindAllStringSubmatch(logs, -1) {
			if m[1] != victim {
				n++
				t.Logf("%s suspected %s, which was not killed", p.name, m[1])
			}
		}
		for _, m := range deathLine.FindAllStringSubmatch(logs, -1) {
			require.Equal(t, victim, m[1], "%s declared a live peer dead\n%s", p.name, tail(logs, 4000))
		}
	}
	return n
}

// detectionPusher pushes a small group to random peers (never the victim)
// until stop is closed.
func detectionPusher(client *http.Client, w int, urls []string, victim string, stop <-chan struct{}, pushes, failed *atomic.Int64) {
	rnd := rand.New(rand.NewPCG(uint64(w), 1))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		base := urls[rnd.IntN(len(urls))]
		if base == victim {
			continue
		}
		body := fmt.Sprintf("# TYPE detection_load gauge\ndetection_load{s=\"a\"} %d\ndetection_load{s=\"b\"} %d\n", i, i)
		req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/metrics/job/load/instance/w%d-%d", base, w, i%500), strings.NewReader(body))
		if err != nil {
			failed.Add(1)
			continue
		}
		resp, err := client.Do(req)
		pushes.Add(1)
		if err != nil {
			failed.Add(1)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			failed.Add(1)
		}
	}
}
