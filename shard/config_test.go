package shard

import (
	"flag"
	"strings"
	"testing"
	"time"

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
