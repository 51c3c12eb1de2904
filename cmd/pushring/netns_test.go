package main

// A peer cut off from the others in network namespaces this test creates
// (docs/cluster.md, "Replication"): three peers, each in a namespace of its
// own joined by a bridge; one peer's link is taken down for 20 s while the
// fleet pushes through the two others, then brought back.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// netLab is a bridge in this namespace and one namespace per peer, each
// linked to the bridge by a veth pair, on a /24 of its own.
type netLab struct {
	id     string
	prefix string   // "10.a.b."; the bridge is .1, peer i is .(10+i)
	ns     []string // namespace of peer i
	host   []string // the bridge end of peer i's veth pair
}

// ipCmd runs ip with args and fails the test on an error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// requireNetns checks that this process may create network namespaces,
// links and bridges (root with CAP_NET_ADMIN, iproute2 installed).
func requireNetns(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		missing(t, "iproute2's ip is not installed")
		return
	}
	name := "prchk" + strconv.FormatUint(rand.Uint64()%1e6, 10)
	if out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput(); err != nil {
		missing(t, fmt.Sprintf("cannot create network links here (root with CAP_NET_ADMIN needed): %s", out))
		return
	}
	_ = exec.Command("ip", "link", "del", name).Run()
}

// newNetLab builds a lab for n peers and removes it when the test ends.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	requireNetns(t)
	r := rand.Uint64()
	l := &netLab{id: strconv.FormatUint(r%1e6, 36), prefix: fmt.Sprintf("10.%d.%d.", 100+r%100, (r>>8)%250)}
	br := "prb" + l.id
	ipCmd(t, "link", "add", br, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", br).Run() })
	ipCmd(t, "addr", "add", l.prefix+"1/24", "dev", br)
	ipCmd(t, "link", "set", br, "up")
	for i := range n {
		ns, host, inner := fmt.Sprintf("prn%s-%d", l.id, i), fmt.Sprintf("prh%s%d", l.id, i), fmt.Sprintf("pri%s%d", l.id, i)
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "link", "add", host, "type", "veth", "peer", "name", inner)
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
		ipCmd(t, "link", "set", inner, "netns", ns)
		ipCmd(t, "link", "set", host, "master", br)
		ipCmd(t, "link", "set", host, "up")
		ipCmd(t, "-n", ns, "addr", "add", l.ip(i)+"/24", "dev", inner)
		ipCmd(t, "-n", ns, "link", "set", inner, "up")
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		l.ns, l.host = append(l.ns, ns), append(l.host, host)
	}
	return l
}

func (l *netLab) ip(i int) string { return l.prefix + strconv.Itoa(10+i) }

// setLink takes peer i's link down (cut) or up (heal).
func (l *netLab) setLink(t *testing.T, i int, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	ipCmd(t, "link", "set", l.host[i], state)
}

// startNetnsCluster starts one peer in each of l's namespaces, each
// listening on its own address with the default ports, and waits until
// they form one cluster.
func startNetnsCluster(t *testing.T, l *netLab) *procCluster {
	t.Helper()
	bin := gatewayBinary(t)
	c := &procCluster{label: "pushring-netns-" + l.id}
	var seeds []string
	for i := range l.ns {
		seeds = append(seeds, "--cluster.peer="+net.JoinHostPort(l.ip(i), "7946"))
	}
	for i, ns := range l.ns {
		name := fmt.Sprintf("peer-%d", i+1)
		args := append([]string{"netns", "exec", ns, bin,
			"--web.listen-address=" + net.JoinHostPort(l.ip(i), "9091"),
			"--persistence.file=",
			"--cluster.listen-address=" + net.JoinHostPort(l.ip(i), "7946"),
			"--cluster.grpc-listen-address=" + net.JoinHostPort(l.ip(i), "9092"),
			"--cluster.peer-name=" + name,
			"--cluster.label=" + c.label,
			"--cluster.settle-timeout=1s",
			"--cluster.rejoin-interval=1s",
		}, seeds...)
		g := &gw{
			kind:   kindPushring,
			base:   "http://" + net.JoinHostPort(l.ip(i), "9091"),
			client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
			cmd:    exec.Command("ip", args...), // ip netns exec execs the binary: the process is pushring's
			done:   make(chan struct{}),
			logs:   &lockedBuffer{},
		}
		g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
		require.NoError(t, g.cmd.Start())
		go func() { g.exit = g.cmd.Wait(); close(g.done) }()
		t.Cleanup(func() { g.stop(t) })
		c.peers = append(c.peers, &procPeer{gw: g, name: name, gossip: net.JoinHostPort(l.ip(i), "7946")})
	}
	for _, p := range c.peers {
		procConverge(t, startTimeout, func() error {
			resp, err := p.client.Get(p.base + "/-/ready")
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s /-/ready answers %d", p.name, resp.StatusCode)
			}
			return nil
		})
	}
	c.waitMembers(t)
	return c
}

// TestReplicationPeerCutOff cuts one of 3 peers off the network for 20 s
// while pushers push every group through the two others and delete some:
// at most 1 % of the pushes fail, and once its link is back every group is
// exposed exactly once with its newest value and no deleted group is back.
func TestReplicationPeerCutOff(t *testing.T) {
	if os.Getenv("PUSHRING_REQUIRE_REAL") == "" && testing.Short() {
		t.Skip("-short")
	}
	l := newNetLab(t, 3)
	c := startNetnsCluster(t, l)
	rnd := rand.New(rand.NewPCG(7, 8))
	client := procPushClient(t)
	const n = 600
	e, ops := replicationGroups(c, rnd, "cut", n, 1)
	procRunOps(t, client, ops)
	procConverge(t, procConvergeTimeout, func() error { _, err := c.exactlyOnce(t, e); return err })

	v := rnd.IntN(len(c.peers))
	victim := c.peers[v]
	live := slices.DeleteFunc(slices.Clone(c.peers), func(q *procPeer) bool { return q == victim })
	l.setLink(t, v, false)
	cut := time.Now()
	r := pushRoundsFor(client, live, e, n, freezeFor)
	l.setLink(t, v, true)
	t.Logf("%s cut off for %s: %s", victim.name, time.Since(cut).Round(time.Millisecond), r)
	require.LessOrEqual(t, float64(r.failed), 0.01*float64(r.pushes), "at most 1 %% of the pushes fail while a peer is cut off")

	took := procConverge(t, procConvergeTimeout, func() error {
		if err := victim.membersAre(t, c.names()); err != nil {
			return fmt.Errorf("%s: %w", victim.name, err)
		}
		_, err := c.exactlyOnce(t, e)
		return err
	})
	t.Logf("after the link is back: the cluster is whole again and every group exposed exactly once with its newest value, no deleted group back, %s later", took.Round(time.Millisecond))
}
