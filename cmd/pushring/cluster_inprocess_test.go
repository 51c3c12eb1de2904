package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// inProcPeer is one peer of an in-process cluster: the real binary's run,
// with real memberlist and gRPC on loopback port 0.
type inProcPeer struct {
	name   string
	http   string // base URL
	gossip string
	cancel context.CancelFunc
	done   chan error
	logs   *lockedBuffer
}

// startInProcPeer starts a peer and waits until it is bound. seeds are
// gossip addresses of running peers.
func startInProcPeer(t testing.TB, name string, seeds []string, extra ...string) *inProcPeer {
	t.Helper()
	args := []string{
		"--web.listen-address=127.0.0.1:0",
		"--cluster.listen-address=127.0.0.1:0",
		"--cluster.grpc-listen-address=127.0.0.1:0",
		"--cluster.peer-name=" + name,
		"--cluster.settle-timeout=300ms",
		"--cluster.rejoin-interval=500ms",
		"--cluster.leave-timeout=2s",
		"--log.level=warn",
	}
	for _, s := range seeds {
		args = append(args, "--cluster.peer="+s)
	}
	args = append(args, envClusterFlags()...)
	args = append(args, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcPeer{name: name, cancel: cancel, done: make(chan error, 1), logs: &lockedBuffer{}}
	started := make(chan startedPeer, 1)
	go func() {
		p.done <- runWith(ctx, args, io.Discard, p.logs, func(sp startedPeer) { started <- sp })
	}()
	select {
	case sp := <-started:
		p.http, p.gossip = "http://"+sp.httpAddr, sp.gossipAddr
	case err := <-p.done:
		cancel()
		t.Fatalf("peer %s did not start: %v\n%s", name, err, p.logs.String())
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop stops the peer gracefully (it leaves and hands its groups over) and
// waits for it; a second call does nothing.
func (p *inProcPeer) stop(t testing.TB) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		require.NoError(t, err, "peer %s stopped with an error\n%s", p.name, p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("peer %s did not stop within 60 s", p.name)
	}
}

// get fetches a URL of the peer.
func (p *inProcPeer) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(p.http + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// send sends one request and returns its status, body and Retry-After.
func (p *inProcPeer) send(t *testing.T, method, path, body string) (int, string, string) {
	t.Helper()
	return p.sendHeader(t, method, path, body, nil)
}

// sendHeader is send with request headers.
func (p *inProcPeer) sendHeader(t *testing.T, method, path, body string, hdr http.Header) (int, string, string) {
	t.Helper()
	code, text, retry, err := p.trySend(method, path, body, hdr)
	require.NoError(t, err)
	return code, text, retry
}

// trySend is send for goroutines other than the test's: it returns the
// error instead of failing the test.
func (p *inProcPeer) trySend(method, path, body string, hdr http.Header) (int, string, string, error) {
	req, err := http.NewRequest(method, p.http+path, strings.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", "", err
	}
	return resp.StatusCode, string(b), resp.Header.Get("Retry-After"), nil
}

// forwardedTotal is the sum of pushring_forwarded_pushes_total on the peer.
func (p *inProcPeer) forwardedTotal(t *testing.T) float64 {
	t.Helper()
	code, body := p.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	sum := 0.0
	for _, m := range fams["pushring_forwarded_pushes_total"].GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// waitConverged polls until every peer sees exactly the given peers and
// is ready.
func waitConverged(t testing.TB, peers []*inProcPeer) {
	t.Helper()
	want := make([]string, len(peers))
	for i, p := range peers {
		want[i] = p.name
	}
	eventually(t, 30*time.Second, func() error {
		for _, p := range peers {
			code, body := p.get(t, "/api/v1/cluster")
			if code != http.StatusOK {
				return fmt.Errorf("%s: /api/v1/cluster %d", p.name, code)
			}
			var resp struct {
				Data struct {
					Peers []struct{ ID string } `json:"peers"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				return err
			}
			var got []string
			for _, q := range resp.Data.Peers {
				got = append(got, q.ID)
			}
			if !sameSet(got, want) {
				return fmt.Errorf("%s sees %v, want %v", p.name, got, want)
			}
			if code, _ := p.get(t, "/-/ready"); code != http.StatusOK {
				return fmt.Errorf("%s not ready (%d)", p.name, code)
			}
		}
		return nil
	})
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// exposure maps each instance label of metric name to the values the
// peers' /metrics expose for it, and counts the instances per peer.
func exposure(t testing.TB, peers []*inProcPeer, name string) (map[string][]float64, map[string]int) {
	t.Helper()
	got := map[string][]float64{}
	perPeer := map[string]int{}
	for _, p := range peers {
		code, body := p.get(t, "/metrics")
		require.Equal(t, http.StatusOK, code)
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		require.NoError(t, err)
		mf := fams[name]
		if mf == nil {
			continue
		}
		for _, m := range mf.GetMetric() {
			inst := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "instance" {
					inst = l.GetValue()
				}
			}
			got[inst] = append(got[inst], m.GetGauge().GetValue())
			perPeer[p.name]++
		}
	}
	return got, perPeer
}

// exactlyOnce reports the first difference between the exposure and want
// (instance → value): a missing, duplicated, unexpected or stale group.
func exactlyOnce(got map[string][]float64, want map[string]float64) error {
	for inst, v := range want {
		switch vs := got[inst]; {
		case len(vs) == 0:
			return fmt.Errorf("group %s is missing", inst)
		case len(vs) > 1:
			return fmt.Errorf("group %s is exposed %d times", inst, len(vs))
		case vs[0] != v:
			return fmt.Errorf("group %s has %v, want %v", inst, vs[0], v)
		}
	}
	for inst := range got {
		if _, ok := want[inst]; !ok {
			return fmt.Errorf("group %s should not exist", inst)
		}
	}
	return nil
}

// TestClusterInProcess runs four peers in this process, pushes and deletes
// a few thousand groups through random peers with every verb, and checks
// that each group is exposed by exactly one peer; then that a graceful
// leave and a join lose nothing and duplicate nothing.
func TestClusterInProcess(t *testing.T) {
	p0 := startInProcPeer(t, "peer-0", nil)
	peers := []*inProcPeer{p0}
	for i := 1; i < 4; i++ {
		peers = append(peers, startInProcPeer(t, fmt.Sprintf("peer-%d", i), []string{p0.gossip}))
	}
	waitConverged(t, peers)

	const groups = 2000
	want := map[string]float64{}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	type op struct {
		peer         *inProcPeer
		method, inst string
		value        float64
	}
	var ops []op
	for i := range groups {
		inst := fmt.Sprintf("n%d", i)
		method := []string{http.MethodPut, http.MethodPost}[i%2]
		ops = append(ops, op{peers[rng.IntN(len(peers))], method, inst, float64(i)})
	}
	work := make(chan op)
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for range 8 {
		wg.Go(func() {
			for o := range work {
				body := fmt.Sprintf("# TYPE ip_value gauge\nip_value %v\n# TYPE ip_pushes counter\nip_pushes 1\n", o.value)
				code, text, _, err := o.peer.trySend(o.method, "/metrics/job/inproc/instance/"+o.inst, body, nil)
				if err != nil {
					errs <- fmt.Errorf("%s %s via %s: %w", o.method, o.inst, o.peer.name, err)
					continue
				}
				if code != http.StatusOK {
					errs <- fmt.Errorf("%s %s via %s: %d %s", o.method, o.inst, o.peer.name, code, text)
					continue
				}
				mu.Lock()
				want[o.inst] = o.value
				mu.Unlock()
			}
		})
	}
	for _, o := range ops {
		work <- o
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := 0; i < groups; i += 10 { // delete every tenth group through a random peer
		inst := fmt.Sprintf("n%d", i)
		code, text, _ := peers[rng.IntN(len(peers))].send(t, http.MethodDelete, "/metrics/job/inproc/instance/"+inst, "")
		require.Equal(t, http.StatusAccepted, code, text)
		delete(want, inst)
	}

	got, perPeer := exposure(t, peers, "ip_value")
	require.NoError(t, exactlyOnce(got, want), "right after the pushes, with a stable membership")
	t.Logf("groups per peer with 4 peers: %v", perPeer)
	for name, n := range perPeer {
		require.InDelta(t, float64(len(want))/4, float64(n), 0.2*float64(len(want))/4, "peer %s", name)
	}

	// The merged views see every group once too.
	code, body := peers[2].get(t, "/api/v1/metrics?scope=cluster")
	require.Equal(t, http.StatusOK, code)
	var apiResp struct {
		Data     []map[string]json.RawMessage `json:"data"`
		Warnings []string                     `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal(body, &apiResp))
	require.Empty(t, apiResp.Warnings)
	require.Len(t, apiResp.Data, len(want))
	code, body = peers[1].get(t, "/cluster/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, len(want), strings.Count(string(body), "\nip_value{"))

	// A graceful leave hands every group of the leaving peer over.
	leaving := peers[1]
	start := time.Now()
	leaving.stop(t)
	peers = append(peers[:1], peers[2:]...)
	eventually(t, 30*time.Second, func() error {
		got, _ := exposure(t, peers, "ip_value")
		return exactlyOnce(got, want)
	})
	t.Logf("leave: exactly once on the 3 remaining peers %v after the stop began", time.Since(start).Round(time.Millisecond))

	// A join takes over its groups from their previous owners.
	start = time.Now()
	joined := startInProcPeer(t, "peer-4", []string{p0.gossip})
	peers = append(peers, joined)
	eventually(t, 30*time.Second, func() error {
		got, perPeer := exposure(t, peers, "ip_value")
		if err := exactlyOnce(got, want); err != nil {
			return err
		}
		if perPeer[joined.name] == 0 {
			return fmt.Errorf("the joined peer holds no group yet")
		}
		return nil
	})
	_, perPeer = exposure(t, peers, "ip_value")
	t.Logf("join: exactly once including the new peer %v after it started; groups per peer %v", time.Since(start).Round(time.Millisecond), perPeer)
}

// TestClusterForwardedAnswersLikeOwner sends the spec's error cases (and
// successes) for one group to its owner and to a peer that forwards them,
// and requires the same status, body and Retry-After.
func TestClusterForwardedAnswersLikeOwner(t *testing.T) {
	extra := []string{"--push.max-body-bytes=4096", "--push.max-label-value-length=64"}
	p0 := startInProcPeer(t, "peer-0", nil, extra...)
	peers := []*inProcPeer{p0,
		startInProcPeer(t, "peer-1", []string{p0.gossip}, extra...),
		startInProcPeer(t, "peer-2", []string{p0.gossip}, extra...)}
	waitConverged(t, peers)

	var members []shard.Member
	byName := map[string]*inProcPeer{}
	for _, p := range peers {
		members = append(members, shard.Member{ID: p.name})
		byName[p.name] = p
	}
	placement, err := shard.NewPlacement(members)
	require.NoError(t, err)
	ownerOf := func(labels map[string]string) (owner, other *inProcPeer) {
		o := placement.Owner(store.NewGroupKey(labels).Hash())
		owner = byName[o.ID]
		for _, p := range peers {
			if p != owner {
				return owner, p
			}
		}
		panic("one peer")
	}

	const path = "/metrics/job/fw/instance/a"
	owner, other := ownerOf(map[string]string{"job": "fw", "instance": "a"})
	code, text, _ := owner.send(t, http.MethodPut, path, "# TYPE fw_m gauge\nfw_m 1\n")
	require.Equal(t, http.StatusOK, code, text)

	gz := func(text string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(text))
		_ = w.Close()
		return b.String()
	}
	gzipped := http.Header{"Content-Encoding": {"gzip"}}
	cases := []struct {
		name, method, path, body string
		hdr                      http.Header
		forwarded                bool // false: answered by the receiving peer, as the owner would
	}{
		{"success", http.MethodPost, path, "# TYPE fw_m gauge\nfw_m 2\n", nil, true},
		{"gzip", http.MethodPut, path, gz("# TYPE fw_m gauge\nfw_m 3\n"), gzipped, true},
		{"TTL header", http.MethodPut, path, "# TYPE fw_m gauge\nfw_m 4\n", http.Header{"Pushring-Ttl": {"1h"}}, true},
		{"unparsable body", http.MethodPut, path, "fw_m{ 1\n", nil, true},
		{"type conflict with the own metrics", http.MethodPost, path, "# TYPE go_goroutines counter\ngo_goroutines 3\n", nil, true},
		{"timestamp", http.MethodPut, path, "fw_m 1 1700000000000\n", nil, true},
		{"label value over --push.max-label-value-length", http.MethodPut, path, `fw_m{x="` + strings.Repeat("v", 65) + "\"} 1\n", nil, true},
		// Bodies are decompressed as they are read, before routing.
		{"gzip body over --push.max-body-bytes once decompressed", http.MethodPut, path, gz("# TYPE fw_big gauge\n" + strings.Repeat("fw_big 1\n", 600)), gzipped, false},
		{"body over --push.max-body-bytes", http.MethodPut, path, "# TYPE fw_big gauge\n" + strings.Repeat("fw_big 1\n", 600), nil, false},
		{"bad TTL header", http.MethodPut, path, "fw_m 1\n", http.Header{"Pushring-Ttl": {"soon"}}, false},
		{"empty TTL header", http.MethodPut, path, "fw_m 1\n", http.Header{"Pushring-Ttl": {""}}, false},
		{"bad base64", http.MethodPut, "/metrics/job/fw/instance@base64/!!!", "fw_m 1\n", nil, false},
		{"empty job", http.MethodPut, "/metrics/job//instance/a", "fw_m 1\n", nil, false},
		{"delete", http.MethodDelete, path, "", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The same state for both: the group as the first PUT left it.
			reset := func() {
				code, text, _ := owner.send(t, http.MethodPut, path, "# TYPE fw_m gauge\nfw_m 1\n")
				require.Equal(t, http.StatusOK, code, text)
			}
			reset()
			oc, ob, or := owner.sendHeader(t, c.method, c.path, c.body, c.hdr)
			reset()
			before := other.forwardedTotal(t)
			fc, fb, fr := other.sendHeader(t, c.method, c.path, c.body, c.hdr)
			require.Equal(t, oc, fc, "status: owner %q, forwarded %q", ob, fb)
			require.Equal(t, ob, fb)
			require.Equal(t, or, fr)
			forwards := other.forwardedTotal(t) - before
			if c.forwarded {
				require.InDelta(t, 1, forwards, 0, "the request went to the owner")
			} else {
				require.InDelta(t, 0, forwards, 0, "answered without the owner")
			}
			t.Logf("%d %q", oc, ob)
		})
	}
}

// TestClusterWipe: an admin wipe sent to one peer empties every peer, as it
// would empty the one Pushgateway; a peer that refuses makes it a 503
// naming that peer.
func TestClusterWipe(t *testing.T) {
	admin := "--web.enable-admin-api"
	p0 := startInProcPeer(t, "peer-0", nil, admin)
	peers := []*inProcPeer{p0, startInProcPeer(t, "peer-1", []string{p0.gossip}, admin), startInProcPeer(t, "peer-2", []string{p0.gossip}, admin)}
	waitConverged(t, peers)
	for i := range 60 {
		code, text, _ := peers[i%3].send(t, http.MethodPut, fmt.Sprintf("/metrics/job/wipe/instance/n%d", i), "# TYPE ip_value gauge\nip_value 1\n")
		require.Equal(t, http.StatusOK, code, text)
	}
	got, perPeer := exposure(t, peers, "ip_value")
	require.Len(t, got, 60)
	require.Len(t, perPeer, 3, "every peer holds some of the groups")

	code, text, _ := peers[1].send(t, http.MethodPut, "/api/v1/admin/wipe", "")
	require.Equal(t, http.StatusAccepted, code, text)
	got, _ = exposure(t, peers, "ip_value")
	require.Empty(t, got, "no peer keeps a group")

	// A peer without the admin API refuses its part.
	p3 := startInProcPeer(t, "peer-3", []string{p0.gossip})
	peers = append(peers, p3)
	waitConverged(t, peers)
	code, text, retry := peers[0].send(t, http.MethodPut, "/api/v1/admin/wipe", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, text, `peer "peer-3"`)
	require.Contains(t, text, "--web.enable-admin-api")
	require.Equal(t, "1", retry)
}

// TestClusterRollingRestart restarts every peer in turn under its own name,
// as a StatefulSet's rolling update does, with persistence files, and
// checks that no group is lost or doubled on the way.
func TestClusterRollingRestart(t *testing.T) {
	dir := t.TempDir()
	persist := func(name string) string { return "--persistence.file=" + dir + "/" + name + ".db" }
	names := []string{"peer-0", "peer-1", "peer-2"}
	p0 := startInProcPeer(t, names[0], nil, persist(names[0]))
	peers := []*inProcPeer{p0,
		startInProcPeer(t, names[1], []string{p0.gossip}, persist(names[1])),
		startInProcPeer(t, names[2], []string{p0.gossip}, persist(names[2]))}
	waitConverged(t, peers)
	want := map[string]float64{}
	for i := range 600 {
		inst := fmt.Sprintf("n%d", i)
		code, text, _ := peers[i%3].send(t, http.MethodPut, "/metrics/job/roll/instance/"+inst, fmt.Sprintf("# TYPE ip_value gauge\nip_value %d\n", i))
		require.Equal(t, http.StatusOK, code, text)
		want[inst] = float64(i)
	}
	for i, name := range names {
		peers[i].stop(t)
		var seeds []string
		for j, p := range peers {
			if j != i {
				seeds = append(seeds, p.gossip)
			}
		}
		peers[i] = startInProcPeer(t, name, seeds, persist(name))
		waitConverged(t, peers)
		eventually(t, 30*time.Second, func() error {
			got, perPeer := exposure(t, peers, "ip_value")
			if perPeer[name] == 0 {
				return fmt.Errorf("%s holds no group yet", name)
			}
			return exactlyOnce(got, want)
		})
	}
}
