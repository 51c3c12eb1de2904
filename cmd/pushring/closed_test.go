package main

// Process tests of a closed peer plane (docs/security.md): peers with
// --cluster.tls-config and --cluster.gossip-key-file, and clients and
// nodes that lack one or the other. Certificates are made at test time.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/internal/testpki"
	"github.com/pushring/pushring/store"
)

// envSecure runs every process cluster of the harness (startProcCluster)
// with TLS and a gossip key, e.g. PUSHRING_CLUSTER_SECURE=1 go test -run
// 'TestCluster|TestPrometheus' ./cmd/pushring/.
const envSecure = "PUSHRING_CLUSTER_SECURE"

// closedPlane is the TLS material and gossip key of one test's cluster.
type closedPlane struct {
	ca      *testpki.CA
	files   testpki.Files
	keyFile string
}

// newClosedPlane makes a CA, a peer certificate for 127.0.0.1, a TLS
// config file and a key file holding one key, in the test's directory.
func newClosedPlane(t testing.TB) *closedPlane {
	t.Helper()
	ca, err := testpki.NewCA("pushring-test")
	require.NoError(t, err)
	dir := t.TempDir()
	files, err := ca.Write(dir, "127.0.0.1")
	require.NoError(t, err)
	p := &closedPlane{ca: ca, files: files, keyFile: filepath.Join(dir, "gossip.key")}
	p.writeKeys(t, gossipKey(1))
	return p
}

// flags are the flags of a peer of the plane.
func (p *closedPlane) flags() []string {
	return []string{"--cluster.tls-config=" + p.files.Config, "--cluster.gossip-key-file=" + p.keyFile}
}

func gossipKey(n byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune('A'+n)), 32)))
}

// writeKeys replaces the key file, the first key primary.
func (p *closedPlane) writeKeys(t testing.TB, keys ...string) {
	t.Helper()
	tmp := p.keyFile + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(strings.Join(keys, "\n")+"\n"), 0o600))
	require.NoError(t, os.Rename(tmp, p.keyFile))
}

// harnessSecureFlags are the flags startProcCluster adds to every peer:
// a closed plane of the test's own when PUSHRING_CLUSTER_SECURE=1.
func harnessSecureFlags(t *testing.T) []string {
	if os.Getenv(envSecure) != "1" {
		return nil
	}
	return newClosedPlane(t).flags()
}

// clientTLS is a TLS client configuration for a peer port: with
// withCert, this plane's peer certificate; trusting this plane's CA.
func (p *closedPlane) clientTLS(t *testing.T, withCert bool) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(p.ca.PEM))
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: "127.0.0.1"}
	if withCert {
		pair, err := tls.LoadX509KeyPair(p.files.Cert, p.files.Key)
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// peerSelf is a peer's own entry in /api/v1/cluster.
type peerSelf struct {
	ID     string `json:"id"`
	Self   bool   `json:"self"`
	GRPC   string `json:"grpc_address"`
	Gossip string `json:"gossip_address"`
}

// members returns the peers of p's /api/v1/cluster.
func (p *procPeer) members(t *testing.T) []peerSelf {
	t.Helper()
	st, body := p.do(t, http.MethodGet, "/api/v1/cluster", nil, nil)
	require.Equal(t, http.StatusOK, st, body)
	var cs struct {
		Data struct {
			Peers []peerSelf `json:"peers"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &cs))
	return cs.Data.Peers
}

// grpcAddr is the gRPC address p advertises.
func (p *procPeer) grpcAddr(t *testing.T) string {
	t.Helper()
	for _, m := range p.members(t) {
		if m.Self {
			return m.GRPC
		}
	}
	t.Fatalf("%s does not list itself", p.name)
	return ""
}

// sdTargetList returns the targets of p's HTTP SD answer, sorted.
func (p *procPeer) sdTargetList(t *testing.T) []string {
	t.Helper()
	st, body := p.do(t, http.MethodGet, "/api/v1/cluster/targets", nil, nil)
	require.Equal(t, http.StatusOK, st, body)
	var groups []struct {
		Targets []string `json:"targets"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &groups))
	var out []string
	for _, g := range groups {
		out = append(out, g.Targets...)
	}
	sort.Strings(out)
	return out
}

// metricValue is the value of the sample of name with the label pairs
// (name=value...) in p's /metrics, or -1 when it is missing.
func (p *procPeer) metricValue(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	st, body := p.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, st)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	for _, m := range mfs[name].GetMetric() {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			ok = ok && labelValue(m, labels[i]) == labels[i+1]
		}
		if ok {
			return procMetricValue(m)
		}
	}
	return -1
}

// rpcClient dials addr with creds; the connection closes with the test.
func rpcClient(t *testing.T, addr string, creds credentials.TransportCredentials) peerpb.PeerClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return peerpb.NewPeerClient(cc)
}

// everyRPC calls every RPC of the peer protocol once and returns the
// answers it got (nil for a call that failed) and the errors.
func everyRPC(client peerpb.PeerClient, groupKey string) (answers []proto.Message, errs []error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	calls := []func() (proto.Message, error){
		func() (proto.Message, error) {
			return client.Push(ctx, &peerpb.PushRequest{Method: http.MethodPut, Path: "/job/intruder", Body: []byte("intruder 1\n")})
		},
		func() (proto.Message, error) {
			return client.HandOff(ctx, &peerpb.HandOffRequest{Groups: []*peerpb.Group{{Key: []byte(groupKey), Version: 1, Deleted: true}}})
		},
		func() (proto.Message, error) { return client.Groups(ctx, &peerpb.GroupsRequest{}) },
		func() (proto.Message, error) { return client.Stats(ctx, &peerpb.StatsRequest{}) },
		func() (proto.Message, error) { return client.Wipe(ctx, &peerpb.WipeRequest{}) },
		func() (proto.Message, error) { return client.Digest(ctx, &peerpb.DigestRequest{}) },
		func() (proto.Message, error) {
			stream, err := client.Pull(ctx, &peerpb.PullRequest{Peer: "intruder", ReplicationFactor: 2})
			if err != nil {
				return nil, err
			}
			return stream.Recv()
		},
	}
	for _, call := range calls {
		a, err := call()
		if err != nil {
			a = nil
		}
		answers, errs = append(answers, a), append(errs, err)
	}
	return answers, errs
}

// TestClosedPlaneRefusesClientsWithoutCertificate: (a) on a closed
// plane, a client without a certificate of the cluster's CA gets no
// answer from any peer RPC, and changes nothing.
func TestClosedPlaneRefusesClientsWithoutCertificate(t *testing.T) {
	t.Parallel()
	plane := newClosedPlane(t)
	c := startProcCluster(t, 2, append(plane.flags(), "--web.enable-admin-api")...)
	for i := range 6 {
		st, body := c.peers[0].do(t, http.MethodPut, fmt.Sprintf("/metrics/job/kept/instance/%d", i), nil, []byte("kept 1\n"))
		require.Equal(t, http.StatusOK, st, body)
	}
	kept := procExpected{job: "kept", groups: map[string]map[string]float64{}}
	for i := range 6 {
		kept.groups[strconv.Itoa(i)] = map[string]float64{"kept": 1}
	}
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, kept); return err })
	key := store.NewGroupKey(map[string]string{"job": "kept", "instance": "0"}).String()

	rogueCA, err := testpki.NewCA("rogue")
	require.NoError(t, err)
	rogueFiles, err := rogueCA.Write(t.TempDir(), "127.0.0.1")
	require.NoError(t, err)
	rogue := &closedPlane{ca: plane.ca, files: rogueFiles} // trusts the cluster's CA, presents the rogue's certificate

	for _, p := range c.peers {
		addr := p.grpcAddr(t)
		for name, creds := range map[string]credentials.TransportCredentials{
			"plaintext":                  insecure.NewCredentials(),
			"TLS without a certificate":  credentials.NewTLS(plane.clientTLS(t, false)),
			"TLS with another CA's cert": credentials.NewTLS(rogue.clientTLS(t, true)),
		} {
			answers, errs := everyRPC(rpcClient(t, addr, creds), key)
			for i := range answers {
				require.Nil(t, answers[i], "%s, %s: RPC %d answered", p.name, name, i)
				require.Error(t, errs[i], "%s, %s: RPC %d", p.name, name, i)
			}
			t.Logf("%s, %s: every RPC failed, e.g. %v", p.name, name, errs[0])
		}
		// The control: the same calls with the cluster's certificate answer.
		st, err := rpcClient(t, addr, credentials.NewTLS(plane.clientTLS(t, true))).Stats(context.Background(), &peerpb.StatsRequest{})
		require.NoError(t, err, "%s: a peer's certificate gets an answer", p.name)
		require.NotNil(t, st)
	}
	_, err = c.exactlyOnce(t, kept)
	require.NoError(t, err, "nothing was wiped, deleted or injected")
	for _, p := range c.peers {
		require.Equal(t, -1.0, p.metricValue(t, "intruder"), "%s stored the intruder's push", p.name)
	}
}

// startRogue starts a peer of another configuration that seeds itself
// with c's peers, under c's label, and waits until it tried to join them
// again at least twice and failed.
func startRogue(t *testing.T, c *procCluster, name string, flags ...string) *procPeer {
	t.Helper()
	gossip := loopbackAddr(t)
	args := []string{
		"--cluster.listen-address=" + gossip, "--cluster.grpc-listen-address=127.0.0.1:0",
		"--cluster.peer-name=" + name, "--cluster.label=" + c.label,
		"--cluster.settle-timeout=1s", "--cluster.rejoin-interval=500ms", "--cluster.join-timeout=1s",
	}
	for _, s := range c.gossipAddrs() {
		args = append(args, "--cluster.peer="+s)
	}
	g := startGateway(t, kindPushring, gatewayBinary(t), append(args, flags...))
	r := &procPeer{gw: g, name: name, gossip: gossip}
	procConverge(t, procConvergeTimeout, func() error {
		if n := r.metricValue(t, "pushring_cluster_rejoins_total", "result", "failure"); n < 2 {
			return fmt.Errorf("%s: %v failed re-joins so far", name, n)
		}
		return nil
	})
	return r
}

// TestClosedPlaneKeepsOutNodesWithoutKey: (b) a node without the gossip
// key (or without TLS) never joins, never owns a group and never shows in
// HTTP SD.
func TestClosedPlaneKeepsOutNodesWithoutKey(t *testing.T) {
	t.Parallel()
	plane := newClosedPlane(t)
	c := startProcCluster(t, 3, plane.flags()...)
	wantTargets := c.httpTargets()
	joins := map[string]float64{}
	for _, p := range c.peers {
		joins[p.name] = p.metricValue(t, "pushring_cluster_membership_changes_total", "event", "join")
	}

	otherKey := filepath.Join(t.TempDir(), "other.key")
	require.NoError(t, os.WriteFile(otherKey, []byte(gossipKey(7)+"\n"), 0o600))
	rogues := []*procPeer{
		startRogue(t, c, "rogue-other-key", "--cluster.tls-config="+plane.files.Config, "--cluster.gossip-key-file="+otherKey),
		startRogue(t, c, "rogue-plain"),
		startRogue(t, c, "rogue-key-only", "--cluster.gossip-key-file="+plane.keyFile),
	}
	for _, r := range rogues {
		require.Len(t, r.members(t), 1, "%s is alone", r.name)
	}
	c.waitMembers(t) // exactly the three peers, all settled
	for _, p := range c.peers {
		require.Equal(t, wantTargets, p.sdTargetList(t), "%s's HTTP SD", p.name)
		require.Equal(t, joins[p.name], p.metricValue(t, "pushring_cluster_membership_changes_total", "event", "join"),
			"%s saw a rogue join", p.name)
	}
	// Pushes through the peers all land on the peers: no rogue owns a group.
	e := procExpected{job: "owned", groups: map[string]map[string]float64{}}
	for i := range 30 {
		st, body := c.peers[i%3].do(t, http.MethodPut, fmt.Sprintf("/metrics/job/owned/instance/%d", i), nil, []byte("owned 1\n"))
		require.Equal(t, http.StatusOK, st, body)
		e.groups[strconv.Itoa(i)] = map[string]float64{"owned": 1}
	}
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })
	for _, r := range rogues {
		require.Equal(t, -1.0, r.metricValue(t, "owned"), "%s got a group", r.name)
	}
}

// httpTargets are the HTTP addresses of the live peers, sorted.
func (c *procCluster) httpTargets() []string {
	var out []string
	for _, p := range c.peers {
		out = append(out, strings.TrimPrefix(p.base, "http://"))
	}
	sort.Strings(out)
	return out
}

// TestClosedPlaneRefusesForgedHandOff: (c) a hand-off from a holder of a
// valid certificate (a compromised or broken peer) with a wild version or
// foreign labels is refused and counted, and changes nothing.
func TestClosedPlaneRefusesForgedHandOff(t *testing.T) {
	t.Parallel()
	plane := newClosedPlane(t)
	c := startProcCluster(t, 2, plane.flags()...)
	st, body := c.peers[0].do(t, http.MethodPut, "/metrics/job/victim/instance/v", nil, []byte("victim 1\n"))
	require.Equal(t, http.StatusOK, st, body)
	e := procExpected{job: "victim", groups: map[string]map[string]float64{"v": {"victim": 1}}}
	var ex procExposure
	procConverge(t, procConvergeTimeout, func() (err error) { ex, err = c.exactlyOnce(t, e); return err })
	owner := c.peers[ex.owner["v"]]
	key := store.NewGroupKey(map[string]string{"job": "victim", "instance": "v"})

	foreign := &dto.MetricFamily{Name: proto.String("victim"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{
		Label: []*dto.LabelPair{{Name: proto.String("stolen"), Value: proto.String("yes")}},
		Gauge: &dto.Gauge{Value: proto.Float64(666)},
	}}}
	fb, err := proto.Marshal(foreign)
	require.NoError(t, err)
	client := rpcClient(t, owner.grpcAddr(t), credentials.NewTLS(plane.clientTLS(t, true)))
	resp, err := client.HandOff(context.Background(), &peerpb.HandOffRequest{OriginPeer: "forger", Groups: []*peerpb.Group{
		{Key: []byte(key.String()), Version: math.MaxUint64, Deleted: true},
		{Key: []byte(key.String()), Version: uint64(time.Now().UnixNano()), Families: []*peerpb.Family{{Name: "victim", MetricFamily: fb}}},
	}})
	require.NoError(t, err)
	require.Zero(t, resp.GetAccepted())
	require.Len(t, resp.GetRejected(), 2)
	require.Equal(t, 1.0, owner.metricValue(t, "pushring_peer_received_rejected_total", "reason", "version_ahead"))
	require.Equal(t, 1.0, owner.metricValue(t, "pushring_peer_received_rejected_total", "reason", "foreign_labels"))
	_, err = c.exactlyOnce(t, e)
	require.NoError(t, err, "the group is still there, unchanged")

	// The version counter did not move: a later push still replaces it.
	st, body = c.peers[1].do(t, http.MethodPut, "/metrics/job/victim/instance/v", nil, []byte("victim 2\n"))
	require.Equal(t, http.StatusOK, st, body)
	e.groups["v"]["victim"] = 2
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })
}

// reloadKeys makes p re-read its key file, through SIGHUP or, with
// viaHTTP, PUT /-/reload, and waits until its log says it did.
func reloadKeys(t *testing.T, p *procPeer, viaHTTP bool) {
	t.Helper()
	before := strings.Count(p.logs.String(), "gossip keys reloaded")
	if viaHTTP {
		st, body := p.do(t, http.MethodPut, "/-/reload", nil, nil)
		require.Equal(t, http.StatusOK, st, body)
	} else {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	}
	procConverge(t, procConvergeTimeout, func() error {
		if strings.Count(p.logs.String(), "gossip keys reloaded") <= before {
			return fmt.Errorf("%s has not reloaded its keys", p.name)
		}
		return nil
	})
}

// TestClosedPlaneKeyRotation: (d) the gossip key is rotated across three
// peers in three steps, each peer reloading in turn while pushes go on:
// no push fails or is lost, and no member leaves anyone's view. After it
// a peer with the new key joins and one with the old key does not.
func TestClosedPlaneKeyRotation(t *testing.T) {
	t.Parallel()
	plane := newClosedPlane(t)
	c := startProcCluster(t, 3, append(plane.flags(), "--web.enable-lifecycle")...)
	oldKey := filepath.Join(t.TempDir(), "old.key")
	require.NoError(t, os.WriteFile(oldKey, []byte(gossipKey(1)+"\n"), 0o600))

	var (
		stop   = make(chan struct{})
		wg     sync.WaitGroup
		mu     sync.Mutex
		pushed []int
		failed []error
		next   atomic.Int64
	)
	client := procPushClient(t)
	peers := slices.Clone(c.peers)
	for w := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 13))
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1))
				if i > 5000 {
					return // bounded, however slow the rotation
				}
				op := procPushOp{url: peers[rnd.IntN(len(peers))].base, job: "rotation", instance: strconv.Itoa(i), method: http.MethodPut, cs: nil}
				err := op.do(client)
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					pushed = append(pushed, i)
				}
				mu.Unlock()
			}
		})
	}
	steps := [][]string{{gossipKey(1), gossipKey(2)}, {gossipKey(2), gossipKey(1)}, {gossipKey(2)}}
	for i, keys := range steps {
		plane.writeKeys(t, keys...)
		for j, p := range c.peers {
			reloadKeys(t, p, j == 1)
		}
		c.waitMembers(t)
		t.Logf("step %d: every peer reloaded %d key(s); members intact", i+1, len(keys))
	}
	close(stop)
	wg.Wait()
	require.Empty(t, failed, "pushes failed during the rotation")
	require.NotEmpty(t, pushed)
	e := procExpected{job: "rotation", groups: map[string]map[string]float64{}}
	for _, i := range pushed {
		e.groups[strconv.Itoa(i)] = map[string]float64{}
	}
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })
	for _, p := range c.peers {
		require.Zero(t, p.metricValue(t, "pushring_cluster_membership_changes_total", "event", "leave"), "%s lost a member", p.name)
	}
	t.Logf("%d pushes during the rotation, none failed or lost", len(pushed))

	startRogue(t, c, "old-key", "--cluster.tls-config="+plane.files.Config, "--cluster.gossip-key-file="+oldKey)
	c.start(t, 1) // the harness's flags: the rotated key file
	c.waitMembers(t)
}

// serialAt completes a TLS handshake with addr and returns the serial of
// the certificate the server presented.
func serialAt(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	require.NoError(t, err, "handshake with %s", addr)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestClosedPlaneCertificateRotation: (e) certificates replaced on disk
// are presented on the next connection to the gRPC and gossip ports,
// without a restart, and the cluster keeps working with them.
func TestClosedPlaneCertificateRotation(t *testing.T) {
	t.Parallel()
	plane := newClosedPlane(t)
	c := startProcCluster(t, 2, plane.flags()...)
	p := c.peers[0]
	grpcAddr, gossipAddr := p.grpcAddr(t), p.gossip
	cfg := plane.clientTLS(t, true)
	cfg.NextProtos = []string{"h2"}
	grpcBefore, gossipBefore := serialAt(t, grpcAddr, cfg), serialAt(t, gossipAddr, cfg)

	require.NoError(t, plane.ca.Rotate(plane.files, "127.0.0.1"))
	grpcAfter, gossipAfter := serialAt(t, grpcAddr, cfg), serialAt(t, gossipAddr, cfg)
	require.NotEqual(t, grpcBefore, grpcAfter, "gRPC presents the new certificate")
	require.NotEqual(t, gossipBefore, gossipAfter, "gossip presents the new certificate")
	require.Equal(t, grpcAfter, gossipAfter)
	// The process logged the reload before it presented the new
	// certificate; its output reaches p.logs through a pipe, later.
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(p.logs.String(), "peer TLS certificate reloaded") {
			return errors.New("the reload is not in the log yet")
		}
		return nil
	})

	// A peer started now connects to the old ones with the new
	// certificate: the pushes it forwards arrive.
	fresh := c.start(t, 1)[0]
	c.waitMembers(t)
	e := procExpected{job: "rotated", groups: map[string]map[string]float64{}}
	for i := range 12 {
		st, body := fresh.do(t, http.MethodPut, fmt.Sprintf("/metrics/job/rotated/instance/%d", i), nil, []byte("rotated 1\n"))
		require.Equal(t, http.StatusOK, st, body)
		e.groups[strconv.Itoa(i)] = map[string]float64{"rotated": 1}
	}
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })
	require.Positive(t, fresh.metricValue(t, "pushring_forwarded_pushes_total", "result", "ok"), "the new peer forwarded pushes over TLS")
}
