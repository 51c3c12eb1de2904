package shard

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.Equal(t, DefaultConfig(), c, "flag defaults are DefaultConfig")
	require.NoError(t, c.Validate(), "the defaults are a valid single peer")

	require.NoError(t, fs.Parse([]string{
		"--cluster.listen-address=0.0.0.0:7946",
		"--cluster.advertise-address=10.0.0.7:7946",
		"--cluster.peer=pushring-headless.monitoring.svc:7946",
		"--cluster.peer=10.0.0.8:7946",
		"--cluster.label=prod-eu",
		"--cluster.peer-name=pushring-0",
		"--cluster.grpc-listen-address=:19092",
		"--cluster.rejoin-interval=1m",
		"--cluster.settle-timeout=10s",
		"--cluster.leave-timeout=2s",
		"--cluster.join-timeout=15s",
		"--cluster.probe-interval=2s",
		"--cluster.probe-timeout=1s",
		"--cluster.gossip-interval=300ms",
		"--cluster.suspicion-multiplier=6",
		"--cluster.suspicion-max-timeout-multiplier=3",
	}))
	require.Equal(t, Config{
		ListenAddress:     "0.0.0.0:7946",
		AdvertiseAddress:  "10.0.0.7:7946",
		Peers:             []string{"pushring-headless.monitoring.svc:7946", "10.0.0.8:7946"},
		Label:             "prod-eu",
		PeerName:          "pushring-0",
		GRPCListenAddress: ":19092",
		RejoinInterval:    time.Minute,
		SettleTimeout:     10 * time.Second,
		LeaveTimeout:      2 * time.Second,
		JoinTimeout:       15 * time.Second,

		ProbeInterval:           2 * time.Second,
		ProbeTimeout:            time.Second,
		GossipInterval:          300 * time.Millisecond,
		SuspicionMult:           6,
		SuspicionMaxTimeoutMult: 3,
	}, c)
	require.NoError(t, c.Validate())
	require.Equal(t, "pushring-headless.monitoring.svc:7946,10.0.0.8:7946", fs.Lookup(flagPeer).Value.String())
}

func TestValidate(t *testing.T) {
	clustered := func(f func(*Config)) Config {
		c := DefaultConfig()
		c.PeerName = "pushring-0"
		c.ListenAddress = "0.0.0.0:7946"
		c.Peers = []string{"pushring-headless:7946"}
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string // empty: valid
	}{
		{"single peer", clustered(func(c *Config) { c.ListenAddress, c.Peers = "", nil }), ""},
		{"clustered", clustered(func(*Config) {}), ""},
		{"empty listen host", clustered(func(c *Config) { c.ListenAddress = ":7946" }), ""},
		{"port 0", clustered(func(c *Config) { c.ListenAddress = "127.0.0.1:0" }), ""},
		{"ipv6 wildcard with advertise", clustered(func(c *Config) { c.ListenAddress, c.AdvertiseAddress = "[::]:7946", "[fd00::7]:7946" }), ""},
		{"no peer name", clustered(func(c *Config) { c.PeerName = "" }), flagPeerName},
		{"long peer name", clustered(func(c *Config) { c.PeerName = strings.Repeat("p", 254) }), flagPeerName},
		{"bad grpc address", clustered(func(c *Config) { c.GRPCListenAddress = "9092" }), flagGRPCListenAddress},
		{"bad grpc port", clustered(func(c *Config) { c.GRPCListenAddress = ":http" }), flagGRPCListenAddress},
		{"long label", clustered(func(c *Config) { c.Label = strings.Repeat("l", 256) }), flagLabel},
		{"negative rejoin", clustered(func(c *Config) { c.RejoinInterval = -time.Second }), flagRejoinInterval},
		{"negative settle", clustered(func(c *Config) { c.SettleTimeout = -time.Second }), flagSettleTimeout},
		{"negative leave", clustered(func(c *Config) { c.LeaveTimeout = -time.Second }), flagLeaveTimeout},
		{"zero probe interval", clustered(func(c *Config) { c.ProbeInterval = 0 }), flagProbeInterval},
		{"negative probe timeout", clustered(func(c *Config) { c.ProbeTimeout = -time.Millisecond }), flagProbeTimeout},
		{"probe timeout not below interval", clustered(func(c *Config) { c.ProbeTimeout = c.ProbeInterval }), flagProbeTimeout},
		{"zero gossip interval", clustered(func(c *Config) { c.GossipInterval = 0 }), flagGossipInterval},
		{"zero suspicion multiplier", clustered(func(c *Config) { c.SuspicionMult = 0 }), flagSuspicionMult},
		{"negative suspicion max multiplier", clustered(func(c *Config) { c.SuspicionMaxTimeoutMult = -1 }), flagSuspicionMaxMult},
		{"slow but valid timings", clustered(func(c *Config) {
			c.ProbeInterval, c.ProbeTimeout, c.GossipInterval = 5*time.Second, 3*time.Second, time.Second
			c.SuspicionMult, c.SuspicionMaxTimeoutMult = 6, 1
		}), ""},
		{"peers without listen", clustered(func(c *Config) { c.ListenAddress = "" }), flagListenAddress},
		{"advertise without listen", clustered(func(c *Config) { c.ListenAddress, c.Peers, c.AdvertiseAddress = "", nil, "10.0.0.7:7946" }), flagListenAddress},
		{"listen without port", clustered(func(c *Config) { c.ListenAddress = "0.0.0.0" }), flagListenAddress},
		{"listen on a name", clustered(func(c *Config) { c.ListenAddress = "localhost:7946" }), flagListenAddress},
		{"ipv6 wildcard alone", clustered(func(c *Config) { c.ListenAddress = "[::]:7946" }), flagAdvertiseAddress},
		{"advertise a name", clustered(func(c *Config) { c.AdvertiseAddress = "pushring-0:7946" }), flagAdvertiseAddress},
		{"advertise a wildcard", clustered(func(c *Config) { c.AdvertiseAddress = "0.0.0.0:7946" }), flagAdvertiseAddress},
		{"advertise without port", clustered(func(c *Config) { c.AdvertiseAddress = "10.0.0.7" }), flagAdvertiseAddress},
		{"peer without port", clustered(func(c *Config) { c.Peers = []string{"pushring-headless"} }), flagPeer},
		{"peer without host", clustered(func(c *Config) { c.Peers = []string{":7946"} }), flagPeer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "--"+tc.err)
		})
	}
}

// The timing flags reach memberlist, and nothing else of its LAN defaults
// changes.
func TestMemberlistTimings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerName, cfg.ListenAddress = "pushring-0", "127.0.0.1:7946"
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.GossipInterval = 3*time.Second, time.Second, 400*time.Millisecond
	cfg.SuspicionMult, cfg.SuspicionMaxTimeoutMult = 5, 2
	m, err := New(cfg, ":9091", nil, prometheus.NewRegistry())
	require.NoError(t, err)
	c := m.memberlistConfig()
	require.Equal(t, 3*time.Second, c.ProbeInterval)
	require.Equal(t, time.Second, c.ProbeTimeout)
	require.Equal(t, 400*time.Millisecond, c.GossipInterval)
	require.Equal(t, 5, c.SuspicionMult)
	require.Equal(t, 2, c.SuspicionMaxTimeoutMult)
	lan := memberlist.DefaultLANConfig()
	require.Equal(t, lan.PushPullInterval, c.PushPullInterval)
	require.Equal(t, lan.IndirectChecks, c.IndirectChecks)
	require.Equal(t, lan.AwarenessMaxMultiplier, c.AwarenessMaxMultiplier)
}
