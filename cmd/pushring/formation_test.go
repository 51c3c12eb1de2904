package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// formationRuns is how many times TestClusterFormsAndStopsTogether starts
// and stops three peers; PUSHRING_FORMATION_RUNS changes it (the figure in
// BENCHMARKS.md is 20 runs).
func formationRuns(t *testing.T) int {
	if s := os.Getenv("PUSHRING_FORMATION_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "PUSHRING_FORMATION_RUNS")
		return n
	}
	return 20
}

// formationDeadline is the bar: three peers started at the same moment
// list each other in their HTTP SD answer within it.
const formationDeadline = 5 * time.Second

// TestClusterFormsAndStopsTogether starts three peers at the same moment,
// each seeded with all three gossip addresses (what a StatefulSet with
// parallel pod management and a headless Service gives), with the
// periodic re-join far out of reach (30 s): the joins at start alone must
// form the cluster. Every peer must list all three in
// /api/v1/cluster/targets within formationDeadline. Then it pushes groups
// and stops all three at once: each must exit 0 within the drain timeout,
// log no ERROR and no line twice, and between them report every group as
// dropped exactly once (no persistence file is set).
func TestClusterFormsAndStopsTogether(t *testing.T) {
	bin := gatewayBinary(t)
	runs := formationRuns(t)
	var formed, stopped []time.Duration
	for run := range runs {
		for attempt := 1; ; attempt++ {
			f, s, portTaken := formAndStop(t, bin, run)
			if !portTaken {
				formed, stopped = append(formed, f), append(stopped, s)
				break
			}
			require.Less(t, attempt, 3, "run %d: a port was taken before a peer bound it, %d times", run, attempt)
		}
	}
	slices.Sort(formed)
	slices.Sort(stopped)
	t.Logf("%d runs: formed in %s..%s (median %s); all three stopped in %s..%s (median %s)",
		runs, formed[0], formed[len(formed)-1], formed[len(formed)/2],
		stopped[0], stopped[len(stopped)-1], stopped[len(stopped)/2])
}

// formationGroups is how many groups each run pushes before the stop.
const formationGroups = 60

// formAndStop is one run; it returns how long the peers took to list each
// other, and how long all three took to exit once signalled together. A
// peer whose port another process took between loopbackAddr and its bind
// (its own peers' outgoing connections use ephemeral ports too) exits at
// once; then the run's peers are stopped and portTaken asks for another
// run on new ports.
func formAndStop(t *testing.T, bin string, run int) (formed, stopped time.Duration, portTaken bool) {
	t.Helper()
	label := "formation-" + strconv.FormatUint(rand.Uint64(), 36)
	gossips, https := make([]string, 3), make([]string, 3)
	for i := range 3 {
		gossips[i], https[i] = loopbackAddr(t), loopbackAddr(t)
	}
	peers := make([]*exec.Cmd, 3)
	logs := make([]*lockedBuffer, 3)
	exits := make([]chan error, 3)
	start := time.Now()
	for i := range 3 {
		args := []string{
			"--web.listen-address=" + https[i],
			"--cluster.listen-address=" + gossips[i],
			"--cluster.grpc-listen-address=127.0.0.1:0",
			"--cluster.peer-name=" + fmt.Sprintf("peer-%d", i),
			"--cluster.label=" + label,
			"--cluster.settle-timeout=1s",
		}
		args = append(args, envClusterFlags()...)
		for _, g := range gossips { // its own address too, as a headless Service lists it
			args = append(args, "--cluster.peer="+g)
		}
		cmd := exec.Command(bin, args...)
		logs[i] = &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = logs[i], logs[i]
		require.NoError(t, cmd.Start())
		peers[i], exits[i] = cmd, make(chan error, 1)
		go func() { exits[i] <- cmd.Wait() }()
	}
	// killAll ends every peer still running; an exit stays in its channel,
	// so a second call finds them all ended.
	killAll := func() {
		for i, cmd := range peers {
			select {
			case err := <-exits[i]:
				exits[i] <- err
			default:
				_ = cmd.Process.Kill()
				exits[i] <- <-exits[i]
			}
		}
	}
	t.Cleanup(killAll)
	dump := func() string {
		var b strings.Builder
		for i, l := range logs {
			fmt.Fprintf(&b, "--- peer-%d:\n%s\n", i, tail(l.String(), 6000))
		}
		return b.String()
	}

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(procPollInterval)
	defer tick.Stop()
	for i, addr := range https {
		for {
			n, err := sdTargets(client, addr)
			if err == nil && n == 3 {
				break
			}
			if exitedOnTakenPort(exits, logs) {
				t.Logf("run %d: a peer's port was taken before it bound it; running again on new ports", run)
				killAll()
				return 0, 0, true
			}
			if time.Since(start) > formationDeadline {
				t.Fatalf("run %d: peer-%d lists %d of 3 peers %s after the start (last error: %v)\n%s", run, i, n, formationDeadline, err, dump())
			}
			<-tick.C
		}
	}
	formed = time.Since(start)

	for g := range formationGroups {
		body := fmt.Sprintf("# TYPE formation_value gauge\nformation_value %d\n", g)
		url := fmt.Sprintf("http://%s/metrics/job/formation/instance/i%d", https[g%3], g)
		req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "run %d: push %d", run, g)
	}

	signalled := time.Now()
	marks := make([]int, 3)
	for i, cmd := range peers {
		marks[i] = len(logs[i].String())
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	}
	var wg sync.WaitGroup
	exitErrs := make([]error, 3)
	for i := range peers {
		wg.Go(func() {
			select {
			case exitErrs[i] = <-exits[i]:
			case <-time.After(procExitTimeout):
				exitErrs[i] = fmt.Errorf("peer-%d did not exit within %s", i, procExitTimeout)
			}
		})
	}
	wg.Wait()
	stopped = time.Since(signalled)
	for i, err := range exitErrs {
		require.NoError(t, err, "run %d: peer-%d's exit after SIGTERM\n%s", run, i, dump())
		exits[i] <- nil // for the cleanup
	}

	dropped := 0
	for i, l := range logs {
		stop := l.String()[marks[i]:]
		require.NotContains(t, stop, "level=ERROR", "run %d: peer-%d logged an error on a clean stop\n%s", run, i, dump())
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(stop), "\n") {
			key := logTime.ReplaceAllString(line, "")
			require.False(t, seen[key], "run %d: peer-%d logged a line twice: %s\n%s", run, i, line, dump())
			seen[key] = true
		}
		if m := droppedLine.FindStringSubmatch(stop); m != nil {
			n, err := strconv.Atoi(m[1])
			require.NoError(t, err)
			dropped += n
		}
	}
	if os.Getenv("PUSHRING_FORMATION_LOGS") != "" {
		t.Log(dump())
	}
	// Each group is held by --cluster.replication-factor (2) peers, and
	// each peer reports the copies it drops. A copy handed to a peer that
	// had not begun to stop yet is reported there instead (once, if that
	// peer held the other copy; as a third copy if not), so each group is
	// reported at least once and at most once per peer.
	require.True(t, dropped >= formationGroups && dropped <= 3*formationGroups,
		"run %d: without a persistence file, every group is reported dropped, at most once per copy (%d reported)\n%s", run, dropped, dump())
	return formed, stopped, false
}

// exitedOnTakenPort reports whether a peer has exited because a port it
// was given was in use. A peer's exit stays in its channel.
func exitedOnTakenPort(exits []chan error, logs []*lockedBuffer) bool {
	for i, exit := range exits {
		select {
		case err := <-exit:
			exit <- err
			if strings.Contains(logs[i].String(), "address already in use") {
				return true
			}
		default:
		}
	}
	return false
}

var (
	logTime     = regexp.MustCompile(`^time=\S+ `)
	droppedLine = regexp.MustCompile(`groups no other peer took are dropped.* dropped=(\d+)`)
)

// sdTargets returns how many targets a peer's HTTP SD answer lists.
func sdTargets(client *http.Client, addr string) (int, error) {
	resp, err := client.Get("http://" + addr + "/api/v1/cluster/targets")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var groups []struct {
		Targets []string `json:"targets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil {
		return 0, err
	}
	return len(groups), nil
}

// loopbackAddr is a loopback address whose port was free a moment ago.
func loopbackAddr(t *testing.T) string {
	t.Helper()
	port, err := freePort()
	require.NoError(t, err)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
