package shard

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestAdvertisedAddr(t *testing.T) {
	for _, tc := range []struct{ listen, host, want string }{
		{":9092", "10.0.0.7", "10.0.0.7:9092"},
		{"0.0.0.0:9092", "10.0.0.7", "10.0.0.7:9092"},
		{"[::]:9092", "fd00::7", "[fd00::7]:9092"},
		{"[::]:9092", "10.0.0.7", "10.0.0.7:9092"},
		{"127.0.0.1:9092", "10.0.0.7", "127.0.0.1:9092"}, // a specific address is dialled as is
		{"pushring-0.pushring:9092", "10.0.0.7", "pushring-0.pushring:9092"},
		{":9092", "", ":9092"}, // host unknown: a single peer
		{"", "10.0.0.7", ""},   // no address (e.g. systemd socket activation)
	} {
		require.Equal(t, tc.want, advertisedAddr(tc.listen, tc.host), "%q at %q", tc.listen, tc.host)
	}
}

func TestAdvertiseHost(t *testing.T) {
	for _, tc := range []struct{ listen, advertise, want string }{
		{"0.0.0.0:7946", "10.0.0.7:7946", "10.0.0.7"},
		{"10.0.0.8:7946", "", "10.0.0.8"},
		{"0.0.0.0:7946", "", ""}, // memberlist chooses
		{":7946", "", ""},
		{"", "", ""},
	} {
		require.Equal(t, tc.want, advertiseHost(Config{ListenAddress: tc.listen, AdvertiseAddress: tc.advertise}))
	}
}

func singlePeer(t *testing.T) (*Membership, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PeerName = "pushring-0"
	reg := prometheus.NewRegistry()
	m, err := New(cfg, ":9091", nil, reg)
	require.NoError(t, err)
	return m, reg
}

func TestSinglePeer(t *testing.T) {
	m, reg := singlePeer(t)
	self := Member{ID: "pushring-0", GRPCAddr: ":9092", HTTPAddr: ":9091"}
	require.Equal(t, self, m.Self())
	require.Equal(t, []Member{self}, m.Ring().Placement().Members())
	require.Equal(t, self, m.Ring().Owner(12345))
	require.True(t, m.Settled(), "a single peer has nothing to settle")
	require.Equal(t, []PeerInfo{{Member: self, State: StateAlive, Self: true}}, m.Peers())
	require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.members))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	cancel()
	require.NoError(t, <-done)
	require.False(t, m.Settled(), "a closed peer is not ready")
	require.NoError(t, m.Close(), "Close after Run is a no-op")
	require.ErrorIs(t, m.Start(), ErrClosed)
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Equal(t, 7, n, "members, 3 change events and 3 rejoin results, all exported from the start")
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerName = ""
	_, err := New(cfg, ":9091", nil, prometheus.NewRegistry())
	require.ErrorContains(t, err, "--"+flagPeerName)
}

// TestSettled drives the settle rule with a fake clock.
func TestSettled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerName, cfg.ListenAddress, cfg.SettleTimeout = "pushring-0", "127.0.0.1:0", 5*time.Second
	m, err := New(cfg, ":9091", nil, prometheus.NewRegistry())
	require.NoError(t, err)
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	m.lastChange.Store(now.UnixNano())

	require.False(t, m.Settled(), "before the first join attempt")
	m.joinDone.Store(true)
	require.False(t, m.Settled(), "members changed just now")
	now = now.Add(5*time.Second - 1)
	require.False(t, m.Settled())
	now = now.Add(1)
	require.True(t, m.Settled(), "stable for the settle timeout")
	m.lastChange.Store(now.UnixNano())
	require.False(t, m.Settled(), "a change restarts the wait")
	now = now.Add(time.Minute)
	require.True(t, m.Settled())
	m.leaving.Store(true)
	require.False(t, m.Settled(), "leaving")
}

func TestResolveSeeds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerName, cfg.ListenAddress = "pushring-1", "0.0.0.0:7946"
	cfg.Peers = []string{"pushring-headless:7946", "10.0.0.9:7946", "gone:7946", "[fd00::3]:7946"}
	m, err := New(cfg, ":9091", nil, prometheus.NewRegistry())
	require.NoError(t, err)
	m.lookupHost = func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "pushring-headless": // every pod, this one included
			return []string{"10.0.0.9", "10.0.0.7", "10.0.0.8"}, nil
		case "gone":
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		default: // an IP resolves to itself
			return []string{host}, nil
		}
	}
	got, resolved := m.resolveSeeds(context.Background(), "10.0.0.8:7946")
	require.Equal(t, []string{"10.0.0.7:7946", "10.0.0.9:7946", "[fd00::3]:7946"}, got,
		"all addresses of a name, sorted, without duplicates, unresolvable seeds or this peer")
	require.Equal(t, 3, resolved)
}

func TestNotMembers(t *testing.T) {
	nodes := []node{{name: "a", addr: "10.0.0.7:7946"}, {name: "b", addr: "10.0.0.8:7946"}}
	require.Equal(t, []string{"10.0.0.9:7946"}, notMembers([]string{"10.0.0.7:7946", "10.0.0.9:7946", "10.0.0.8:7946"}, nodes))
	require.Empty(t, notMembers([]string{"10.0.0.7:7946"}, nodes))
}

func TestMemberOfUnreadableMeta(t *testing.T) {
	m, _ := singlePeer(t)
	got, joining := m.memberOf(node{name: "pushring-9", meta: []byte{9, 9}})
	require.Equal(t, Member{ID: "pushring-9"}, got, "keeps its place, without addresses")
	require.False(t, joining, "an unreadable peer keeps its place")
}

func TestEventDelegateNeverBlocks(t *testing.T) {
	poke := make(chan struct{}, 1)
	reg := prometheus.NewRegistry()
	d := &eventDelegate{poke: poke, changes: newMetrics(reg).changes}
	n := &memberlist.Node{Name: "x"}
	for range 3 { // nobody drains poke: the second and third must not block
		d.NotifyJoin(n)
		d.NotifyUpdate(n)
		d.NotifyLeave(n)
	}
	require.Len(t, poke, 1, "pokes coalesce into one")
	require.Equal(t, 3.0, testutil.ToFloat64(d.changes.WithLabelValues(eventJoin)))
	require.Equal(t, 3.0, testutil.ToFloat64(d.changes.WithLabelValues(eventLeave)))
	require.Equal(t, 3.0, testutil.ToFloat64(d.changes.WithLabelValues(eventUpdate)))
	require.Empty(t, d.members(), "joined, updated, then left")
	d.NotifyJoin(&memberlist.Node{Name: "y", Addr: net.ParseIP("10.0.0.1"), Port: 7946, Meta: []byte{1}})
	require.Equal(t, []node{{name: "y", addr: "10.0.0.1:7946", meta: []byte{1}}}, d.members(), "a copy")
}

func TestMetaDelegate(t *testing.T) {
	var d metaDelegate
	require.Nil(t, d.NodeMeta(memberlist.MetaMaxSize), "nothing set yet")
	d.set([]byte{1, 0, 0})
	require.Equal(t, []byte{1, 0, 0}, d.NodeMeta(memberlist.MetaMaxSize))
	require.Nil(t, d.NodeMeta(2), "over the limit memberlist passes")
	require.Nil(t, d.GetBroadcasts(0, 1400))
	require.Nil(t, d.LocalState(true))
}

// TestRingSwapUnderReaders checks (with -race) that lookups run against
// whole snapshots while the ring swaps them.
func TestRingSwapUnderReaders(t *testing.T) {
	a, err := NewPlacement([]Member{{ID: "a"}, {ID: "b"}})
	require.NoError(t, err)
	b, err := NewPlacement([]Member{{ID: "a"}, {ID: "b"}, {ID: "c"}})
	require.NoError(t, err)
	r := NewRing(a)
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for h := uint64(0); ; h++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			p := r.Placement()
			if got := r.Owners(h, 3); len(got) < 2 {
				done <- errors.New("a reader saw a partial placement")
				return
			}
			if o := p.Owner(h); o != p.Owners(h, 1)[0] {
				done <- errors.New("one snapshot gave two owners")
				return
			}
		}
	}()
	next, other := b, a
	for range 1000 {
		require.True(t, r.update(next))
		next, other = other, next
	}
	require.Same(t, a, r.Placement(), "an even number of swaps from a")
	same, err := NewPlacement([]Member{{ID: "b"}, {ID: "a"}})
	require.NoError(t, err)
	require.False(t, r.update(same), "an equal placement is not swapped in")
	require.Same(t, a, r.Placement())
	close(stop)
	require.NoError(t, <-done)
}

// TestRingChanged checks that a swap signals Changed once, an equal
// placement does not, and a pending signal never blocks the writer.
func TestRingChanged(t *testing.T) {
	a, err := NewPlacement([]Member{{ID: "a"}})
	require.NoError(t, err)
	b, err := NewPlacement([]Member{{ID: "a"}, {ID: "b"}})
	require.NoError(t, err)
	r := NewRing(a)
	select {
	case <-r.Changed():
		t.Fatal("a new ring has no change pending")
	default:
	}
	require.False(t, r.update(a))
	require.True(t, r.update(b))
	require.True(t, r.update(a), "a second change before the reader woke does not block")
	<-r.Changed()
	select {
	case <-r.Changed():
		t.Fatal("two changes in a row are one signal")
	default:
	}
	require.Same(t, a, r.Placement())
}
