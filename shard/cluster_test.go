package shard

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/internal/poll"
)

// testLabel is the cluster label of the test clusters.
const testLabel = "pushring-test"

// fastGossip shortens memberlist's timings so a loopback cluster converges
// in a fraction of a second. Production uses the Config's timings.
func fastGossip(c *memberlist.Config) {
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = 500 * time.Millisecond
	c.GossipToTheDeadTime = time.Second
	c.TCPTimeout = time.Second
	c.SuspicionMult = 2
}

// testPeer is a Membership running on loopback, gossip port chosen by the
// kernel.
type testPeer struct {
	name   string
	m      *Membership
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// peerOpts are the settings that differ between test peers.
type peerOpts struct {
	label    string
	grpcPort int
	seeds    []string
	lookup   func(context.Context, string) ([]string, error)
	listen   string        // gossip address; default 127.0.0.1:0
	join     time.Duration // --cluster.join-timeout; default 300 ms
	keyFile  string        // --cluster.gossip-key-file
	tls      *TransportTLS // gossip over TLS
	joining  bool          // stays joining: Serve is not called
}

// startPeer starts a peer and stops it at the end of the test.
func startPeer(t *testing.T, name string, o peerOpts) *testPeer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PeerName = name
	cfg.ListenAddress = cmp.Or(o.listen, "127.0.0.1:0")
	cfg.JoinTimeout = cmp.Or(o.join, 300*time.Millisecond)
	cfg.GRPCListenAddress = fmt.Sprintf(":%d", o.grpcPort) // advertised, never bound here
	cfg.Peers = o.seeds
	cfg.Label = o.label
	cfg.RejoinInterval = 50 * time.Millisecond
	cfg.SettleTimeout = 200 * time.Millisecond
	cfg.LeaveTimeout = 2 * time.Second
	cfg.tune = fastGossip
	cfg.GossipKeyFile, cfg.TLS = o.keyFile, o.tls
	p := &testPeer{name: name, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	m, err := New(cfg, fmt.Sprintf("0.0.0.0:%d", o.grpcPort+1), testLogger(t, name), p.reg)
	require.NoError(t, err)
	if o.lookup != nil {
		m.lookupHost = o.lookup
	}
	p.m = m
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	require.NoError(t, m.Start())
	if !o.joining {
		require.NoError(t, m.Serve())
	}
	go func() { p.done <- m.Run(ctx) }()
	t.Cleanup(func() { _ = p.stop() })
	return p
}

// stop ends the peer's Run, which leaves the cluster, and returns its error.
func (p *testPeer) stop() error {
	p.once.Do(func() {
		p.cancel()
		select {
		case p.err = <-p.done:
		case <-time.After(10 * time.Second):
			p.err = fmt.Errorf("%s: Run did not return", p.name)
		}
	})
	return p.err
}

// gossipAddr is the address other peers join this one at.
func (p *testPeer) gossipAddr() string { return p.m.ml.Load().LocalNode().Address() }

func (p *testPeer) ringIDs() []string {
	ms := p.m.Ring().Placement().Members()
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func (p *testPeer) counter(c *prometheus.CounterVec, label string) float64 {
	return testutil.ToFloat64(c.WithLabelValues(label))
}

// testLogger keeps a peer's logs and prints them if the test fails.
// memberlist logs from its own goroutines, possibly after the test ends,
// so it cannot log to t directly.
func testLogger(t *testing.T, name string) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("logs of %s:\n%s", name, buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, 15*time.Second, what, cond)
}

// ringsAre waits until every peer's ring holds exactly want.
func ringsAre(t *testing.T, peers []*testPeer, want ...string) {
	t.Helper()
	for _, p := range peers {
		eventually(t, fmt.Sprintf("%s's ring is %v (now %v)", p.name, want, p.ringIDs()), func() bool {
			return slices.Equal(p.ringIDs(), want)
		})
	}
}

// TestCluster runs three peers on loopback: they converge on one
// placement with each other's addresses, a graceful leave shrinks it, and
// a peer with another cluster label never gets in.
func TestCluster(t *testing.T) {
	a := startPeer(t, "pushring-a", peerOpts{label: testLabel, grpcPort: 19100})
	b := startPeer(t, "pushring-b", peerOpts{label: testLabel, grpcPort: 19200, seeds: []string{a.gossipAddr()}})
	c := startPeer(t, "pushring-c", peerOpts{label: testLabel, grpcPort: 19300, seeds: []string{a.gossipAddr(), b.gossipAddr()}})
	all := []*testPeer{a, b, c}
	ringsAre(t, all, "pushring-a", "pushring-b", "pushring-c")

	// Every peer sees every other with the addresses it advertises: the
	// wildcard gRPC and HTTP hosts replaced by the gossip IP.
	require.Equal(t, Member{ID: "pushring-b", GRPCAddr: "127.0.0.1:19200", HTTPAddr: "127.0.0.1:19201"}, b.m.Self())
	for _, p := range all {
		eventually(t, p.name+" has everyone's metadata", func() bool {
			for _, q := range all {
				if mb, _ := p.m.Ring().Placement().Member(q.name); mb != q.m.Self() {
					return false
				}
			}
			return true
		})
	}
	for h := range uint64(100) {
		require.Equal(t, a.m.Ring().Owners(h*0x9e3779b97f4a7c15, 2), c.m.Ring().Owners(h*0x9e3779b97f4a7c15, 2), "peers agree on owners")
	}
	for _, p := range all {
		eventually(t, p.name+" settles", p.m.Settled)
		require.Equal(t, 3.0, testutil.ToFloat64(p.m.metrics.members))
		peers := p.m.Peers()
		require.Len(t, peers, 3)
		self := 0
		for _, pi := range peers {
			require.Equal(t, StateAlive, pi.State)
			require.NotEmpty(t, pi.GossipAddr)
			require.False(t, pi.Joined.IsZero(), "every member advertises when it joined")
			if pi.Self {
				self++
				require.Equal(t, p.name, pi.ID)
			}
		}
		require.Equal(t, 1, self)
	}
	require.GreaterOrEqual(t, a.counter(a.m.metrics.changes, eventJoin), 3.0, "a saw itself, b and c join")

	// A peer of another cluster knows a's and b's addresses and keeps
	// trying; memberlist drops its streams.
	d := startPeer(t, "pushring-d", peerOpts{label: "other-cluster", grpcPort: 19400, seeds: []string{a.gossipAddr(), b.gossipAddr()}})
	require.Equal(t, []string{"pushring-d"}, d.ringIDs(), "its first join failed")
	eventually(t, "d gives up joining after --cluster.join-timeout", d.m.Settled)
	eventually(t, "d's re-joins fail too", func() bool { return d.counter(d.m.metrics.rejoins, resultFailure) >= 2 })

	require.NoError(t, c.stop(), "c leaves gracefully")
	ringsAre(t, []*testPeer{a, b}, "pushring-a", "pushring-b") // exact: no d either
	require.Equal(t, []string{"pushring-d"}, d.ringIDs())
	require.GreaterOrEqual(t, a.counter(a.m.metrics.changes, eventLeave), 1.0)
	require.Equal(t, 2.0, testutil.ToFloat64(a.m.metrics.members))
	for _, p := range []*testPeer{a, b} {
		require.Len(t, p.m.Peers(), 2)
	}
	require.False(t, c.m.Settled(), "a peer that left is not ready")
	require.Len(t, c.ringIDs(), 3, "a peer that left keeps its last placement")
}

// TestJoiningPeerOwnsNothingUntilItServes: a member that has not served
// yet is listed as joining and left out of every other peer's placement,
// while its own holds it; once it serves, every placement holds it.
func TestJoiningPeerOwnsNothingUntilItServes(t *testing.T) {
	a := startPeer(t, "pushring-a", peerOpts{label: testLabel, grpcPort: 19700})
	b := startPeer(t, "pushring-b", peerOpts{label: testLabel, grpcPort: 19800, seeds: []string{a.gossipAddr()}, joining: true})
	ringsAre(t, []*testPeer{b}, "pushring-a", "pushring-b")
	eventually(t, "a lists b as joining", func() bool {
		for _, pi := range a.m.Peers() {
			if pi.ID == "pushring-b" {
				return pi.State == StateJoining
			}
		}
		return false
	})
	require.Equal(t, []string{"pushring-a"}, a.ringIDs(), "a joining member owns nothing")
	require.False(t, b.m.Serving())

	require.NoError(t, b.m.Serve())
	require.True(t, b.m.Serving())
	ringsAre(t, []*testPeer{a, b}, "pushring-a", "pushring-b")
	for _, pi := range a.m.Peers() {
		require.Equal(t, StateAlive, pi.State, pi.ID)
	}
}

// TestRejoinFindsLateSeed starts a peer whose seed name does not resolve
// yet, as a headless Service before the first pod is ready; the periodic
// re-join brings it into the cluster once it does.
func TestRejoinFindsLateSeed(t *testing.T) {
	a := startPeer(t, "pushring-a", peerOpts{label: testLabel, grpcPort: 19500})
	_, port, err := net.SplitHostPort(a.gossipAddr())
	require.NoError(t, err)
	var published atomic.Bool
	lookup := func(_ context.Context, host string) ([]string, error) {
		if host == "pushring-headless" && published.Load() {
			return []string{"127.0.0.1"}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	b := startPeer(t, "pushring-b", peerOpts{label: testLabel, grpcPort: 19600,
		seeds: []string{"pushring-headless:" + port}, lookup: lookup})
	require.Equal(t, []string{"pushring-b"}, b.ringIDs(), "nothing to join at start")
	require.False(t, b.m.Settled(), "b keeps trying while its seed does not resolve")
	eventually(t, "b settles alone after --cluster.join-timeout", b.m.Settled)
	eventually(t, "b's re-joins fail while the seed does not resolve", func() bool {
		return b.counter(b.m.metrics.rejoins, resultFailure) >= 1
	})
	require.Zero(t, b.counter(b.m.metrics.rejoins, resultSkipped))

	published.Store(true)
	ringsAre(t, []*testPeer{a, b}, "pushring-a", "pushring-b")
	require.GreaterOrEqual(t, b.counter(b.m.metrics.rejoins, resultSuccess), 1.0)
	eventually(t, "b skips re-joining a seed that is a member", func() bool {
		return b.counter(b.m.metrics.rejoins, resultSkipped) >= 1
	})
}

// TestWildcardListenAdvertisesChosenIP binds gossip to 0.0.0.0, where
// memberlist picks the IP to advertise once it runs; the gRPC and HTTP
// addresses must then be advertised with that IP.
func TestWildcardListenAdvertisesChosenIP(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerName, cfg.ListenAddress, cfg.tune = "pushring-w", "0.0.0.0:0", fastGossip
	m, err := New(cfg, ":9091", testLogger(t, cfg.PeerName), prometheus.NewRegistry())
	require.NoError(t, err)
	if err := m.Start(); err != nil {
		require.ErrorContains(t, err, "private IP", "the only acceptable failure")
		t.Skipf("memberlist finds no private IP to advertise on this host: %v", err)
	}
	defer func() { require.NoError(t, m.Close()) }()
	host := m.ml.Load().LocalNode().Addr.String()
	want := Member{ID: "pushring-w", GRPCAddr: net.JoinHostPort(host, "9092"), HTTPAddr: net.JoinHostPort(host, "9091")}
	require.Equal(t, want, m.Self())
	require.Equal(t, []Member{want}, m.Ring().Placement().Members(), "Start returns with the advertised addresses in the ring")
	meta, err := DecodeNodeMeta(m.ml.Load().LocalNode().Meta)
	require.NoError(t, err)
	require.Equal(t, NodeMeta{GRPCAddr: want.GRPCAddr, HTTPAddr: want.HTTPAddr, Joining: true, Started: m.startedAt.UnixMilli()}, meta,
		"and in the metadata gossip carries (joining: this peer never served)")
}

// TestJoinRetriesUntilTheSeedListens starts two peers as a StatefulSet
// with parallel pod management would: each names the other as its seed,
// and the second is not listening yet when the first tries. The first
// keeps trying, is not settled meanwhile, and the two form one cluster
// long before --cluster.join-timeout or a re-join would.
func TestJoinRetriesUntilTheSeedListens(t *testing.T) {
	lb := reserveAddr(t)
	a := startPeer(t, "pushring-a", peerOpts{label: testLabel, grpcPort: 19700, seeds: []string{lb}, join: time.Minute})
	require.False(t, a.m.Settled(), "a is joining, not settled")
	b := startPeer(t, "pushring-b", peerOpts{label: testLabel, grpcPort: 19800, seeds: []string{a.gossipAddr()}, listen: lb, join: time.Minute})
	ringsAre(t, []*testPeer{a, b}, "pushring-a", "pushring-b")
	eventually(t, "a settles", a.m.Settled)
	eventually(t, "b settles", b.m.Settled)
	require.Zero(t, a.counter(a.m.metrics.rejoins, resultSuccess)+a.counter(a.m.metrics.rejoins, resultFailure),
		"the joins at start did it, not the periodic re-join")
}

// TestJoinAloneWhenTheSeedsNameOnlyThisPeer: the first peer of a cluster,
// whose seeds resolve to its own address, does not wait for anyone.
func TestJoinAloneWhenTheSeedsNameOnlyThisPeer(t *testing.T) {
	own := reserveAddr(t)
	a := startPeer(t, "pushring-a", peerOpts{label: testLabel, grpcPort: 19900, seeds: []string{own}, listen: own, join: time.Hour})
	eventually(t, "a settles alone at once", a.m.Settled)
	require.Equal(t, []string{"pushring-a"}, a.ringIDs())
}

// reserveAddr returns a loopback TCP address that was free a moment ago,
// for a peer that must be named before it listens.
func reserveAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
