package shard

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/pushring/pushring/internal/flagcheck"
)

// Flag names, also quoted in the errors that tell an operator what to fix.
const (
	flagListenAddress     = "cluster.listen-address"
	flagAdvertiseAddress  = "cluster.advertise-address"
	flagPeer              = "cluster.peer"
	flagLabel             = "cluster.label"
	flagPeerName          = "cluster.peer-name"
	flagGRPCListenAddress = "cluster.grpc-listen-address"
	flagRejoinInterval    = "cluster.rejoin-interval"
	flagSettleTimeout     = "cluster.settle-timeout"
	flagLeaveTimeout      = "cluster.leave-timeout"
	flagJoinTimeout       = "cluster.join-timeout"
	flagProbeInterval     = "cluster.probe-interval"
	flagProbeTimeout      = "cluster.probe-timeout"
	flagGossipInterval    = "cluster.gossip-interval"
	flagSuspicionMult     = "cluster.suspicion-multiplier"
	flagSuspicionMaxMult  = "cluster.suspicion-max-timeout-multiplier"
)

// Defaults, in one place.
const (
	// DefaultGRPCListenAddress is the port next to the Pushgateway's 9091,
	// so the two ports of a peer are found together. 9092 is also Kafka's
	// default; that only matters with hostNetwork, where the flag moves it.
	DefaultGRPCListenAddress = ":9092"
	// DefaultRejoinInterval matches memberlist's LAN push/pull interval:
	// a healed partition or a seed that came up late is found within a
	// minute, and as a re-join only contacts seeds that are not already
	// live members, a healthy cluster pays nothing for it.
	DefaultRejoinInterval = 30 * time.Second
	// DefaultSettleTimeout is many gossip rounds (DefaultGossipInterval)
	// and probe rounds (DefaultProbeInterval): the joins of a StatefulSet
	// rollout reach a peer well within it, and it adds only a few seconds
	// to each pod's readiness.
	DefaultSettleTimeout = 5 * time.Second
	// DefaultLeaveTimeout bounds the wait for the leave broadcast, which
	// normally goes out within a gossip round, well inside Kubernetes'
	// default 30 s termination grace period.
	DefaultLeaveTimeout = 5 * time.Second
	// DefaultJoinTimeout bounds how long a starting peer keeps trying its
	// seeds before it serves as a cluster of one: peers started together
	// find each other within a second or two, so this only matters when no
	// seed answers at all, and then the periodic re-join takes over at the
	// same cadence as DefaultRejoinInterval.
	DefaultJoinTimeout = 30 * time.Second
	// DefaultProbeInterval is how often a peer probes another one. Half of
	// memberlist's LAN default: with DefaultSuspicionMult, a peer killed
	// with SIGKILL left its survivors' views 2.6–4.0 s later in clusters of
	// 3 to 10 peers, against 5.1–7.5 s with the LAN defaults, for two small
	// UDP packets a second per peer (BENCHMARKS.md, "Failure detection";
	// docs/cluster.md has the arithmetic).
	DefaultProbeInterval = 500 * time.Millisecond
	// DefaultProbeTimeout is how long a direct probe waits for its ack
	// before other peers are asked to probe too (memberlist's local-network
	// figure); the probe as a whole fails only when no ack arrived within
	// the probe interval.
	DefaultProbeTimeout = 200 * time.Millisecond
	// DefaultGossipInterval is memberlist's LAN default: a death or a join
	// reaches the other peers within a few rounds of it.
	DefaultGossipInterval = 200 * time.Millisecond
	// DefaultSuspicionMult is memberlist's LAN default: a suspected peer has
	// this many probe intervals (more in clusters of over 10 peers) to
	// refute the suspicion, 2 s with DefaultProbeInterval.
	DefaultSuspicionMult = 4
	// DefaultSuspicionMaxTimeoutMult is memberlist's LAN default: without
	// the confirmations of other peers a suspicion lasts up to this many
	// times longer.
	DefaultSuspicionMaxTimeoutMult = 6
	// maxPeerName bounds --cluster.peer-name at the length of a DNS name;
	// pod names are far shorter.
	maxPeerName = 253
)

// Config configures cluster membership. With an empty ListenAddress the
// peer runs alone: no gossip, and it owns every group.
type Config struct {
	// ListenAddress is the gossip (TCP and UDP) bind host:port; empty
	// means a single peer. An empty host binds all IPv4 addresses.
	ListenAddress string
	// AdvertiseAddress is the IP:port other peers reach this one at; empty
	// means the listen IP, or for a wildcard listen address a private IP
	// of this host that memberlist picks.
	AdvertiseAddress string
	// Peers are the seeds to join, host:port each. A host name resolves to
	// all its addresses at every join, so a Kubernetes headless Service
	// names every peer.
	Peers []string
	// Label fences clusters that share a network: memberlist drops packets
	// and streams whose label differs. Every peer of a cluster sets the same.
	Label string
	// PeerName is this peer's stable member ID; it decides which groups
	// the peer owns.
	PeerName string
	// GRPCListenAddress is where the peer serves gRPC; advertised to the
	// other peers (a wildcard host replaced by the advertised host).
	GRPCListenAddress string
	// RejoinInterval is how often the seeds that are not live members are
	// joined again, to heal partitions; 0 disables it.
	RejoinInterval time.Duration
	// SettleTimeout is how long the member list must stay unchanged after
	// the first join before the peer counts as settled.
	SettleTimeout time.Duration
	// LeaveTimeout bounds the wait for the leave broadcast at shutdown.
	LeaveTimeout time.Duration
	// JoinTimeout bounds how long a starting peer keeps resolving and
	// joining its seeds, with backoff, before it serves as a cluster of
	// one; 0 tries once.
	JoinTimeout time.Duration

	// ProbeInterval is how often this peer probes a random other one;
	// memberlist's ProbeInterval.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for its ack before
	// other peers probe on this one's behalf; memberlist's ProbeTimeout.
	// Less than ProbeInterval.
	ProbeTimeout time.Duration
	// GossipInterval is how often queued gossip goes out to random peers;
	// memberlist's GossipInterval.
	GossipInterval time.Duration
	// SuspicionMult scales how long a suspected peer may refute before it
	// is declared dead: SuspicionMult × ProbeInterval × max(1, log10(N));
	// memberlist's SuspicionMult.
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds that time when other peers do not
	// confirm the suspicion; memberlist's SuspicionMaxTimeoutMult.
	SuspicionMaxTimeoutMult int

	// GossipKeyFile is the file of gossip encryption keys (keyring.go);
	// empty gossips in plaintext.
	GossipKeyFile string
	// TLS, when set, carries gossip over TLS (tls_transport.go) instead of
	// memberlist's TCP and UDP. Set by the cluster from --cluster.tls-config.
	TLS *TransportTLS

	// tune adjusts the memberlist configuration after everything above is
	// applied. Tests shorten memberlist's timings further with it.
	tune func(*memberlist.Config)
}

// DefaultConfig returns the defaults RegisterFlags registers.
func DefaultConfig() Config {
	return Config{
		PeerName:          defaultPeerName(),
		GRPCListenAddress: DefaultGRPCListenAddress,
		RejoinInterval:    DefaultRejoinInterval,
		SettleTimeout:     DefaultSettleTimeout,
		LeaveTimeout:      DefaultLeaveTimeout,
		JoinTimeout:       DefaultJoinTimeout,

		ProbeInterval:           DefaultProbeInterval,
		ProbeTimeout:            DefaultProbeTimeout,
		GossipInterval:          DefaultGossipInterval,
		SuspicionMult:           DefaultSuspicionMult,
		SuspicionMaxTimeoutMult: DefaultSuspicionMaxTimeoutMult,
	}
}

// defaultPeerName is the hostname: the pod name in a StatefulSet, which
// survives restarts, so groups stay where they are. Empty if unknown;
// Validate then asks for the flag.
func defaultPeerName() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// RegisterFlags registers the cluster flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.ListenAddress, flagListenAddress, d.ListenAddress,
		"Gossip listen address (host:port, TCP and UDP) for cluster membership, e.g. 0.0.0.0:7946. Empty runs a single peer.")
	fs.StringVar(&c.AdvertiseAddress, flagAdvertiseAddress, d.AdvertiseAddress,
		"Gossip address (IP:port) other peers reach this one at. Empty means the listen IP, or a private IP of this host for a wildcard listen address.")
	c.Peers = d.Peers
	fs.Var((*stringsValue)(&c.Peers), flagPeer,
		"Seed peer (host:port) to join. Repeatable. A host name resolves to all its addresses, e.g. a Kubernetes headless Service.")
	fs.StringVar(&c.Label, flagLabel, d.Label,
		"Cluster label: peers only gossip with peers of the same label, which keeps foreign clusters out. At most 255 bytes.")
	fs.StringVar(&c.PeerName, flagPeerName, d.PeerName,
		"Stable, unique name of this peer; it decides which groups the peer owns. Defaults to the hostname (the pod name in a StatefulSet).")
	fs.StringVar(&c.GRPCListenAddress, flagGRPCListenAddress, d.GRPCListenAddress,
		"Address (host:port) of the gRPC service peers forward pushes to. A wildcard host is advertised as the gossip advertise host.")
	fs.DurationVar(&c.RejoinInterval, flagRejoinInterval, d.RejoinInterval,
		"How often to join the seed peers that are not live members again, to heal partitions. 0 disables it.")
	fs.DurationVar(&c.SettleTimeout, flagSettleTimeout, d.SettleTimeout,
		"How long the member list must stay unchanged after joining before the peer counts as settled (ready).")
	fs.DurationVar(&c.LeaveTimeout, flagLeaveTimeout, d.LeaveTimeout,
		"How long to wait at shutdown for the leave message to reach another peer.")
	fs.DurationVar(&c.JoinTimeout, flagJoinTimeout, d.JoinTimeout,
		"How long a starting peer keeps resolving and joining its seed peers, with backoff, before it serves as a cluster of one. It is not ready meanwhile, unless its seeds resolve to no address but its own (the first peer). 0 tries once.")
	c.registerTimingFlags(fs, d)
	c.registerSecurityFlags(fs, d)
}

// registerTimingFlags registers memberlist's failure detection and gossip
// timings.
func (c *Config) registerTimingFlags(fs *flag.FlagSet, d Config) {
	fs.DurationVar(&c.ProbeInterval, flagProbeInterval, d.ProbeInterval,
		"How often a peer probes a random other peer to detect failures. Shorter detects a crashed peer sooner, for more probe packets.")
	fs.DurationVar(&c.ProbeTimeout, flagProbeTimeout, d.ProbeTimeout,
		"How long a direct probe waits for its answer before other peers are asked to probe too; about the 99th percentile round trip of the network. Less than --"+flagProbeInterval+".")
	fs.DurationVar(&c.GossipInterval, flagGossipInterval, d.GossipInterval,
		"How often a peer sends its queued gossip (joins, suspicions, deaths) to a few random peers.")
	fs.IntVar(&c.SuspicionMult, flagSuspicionMult, d.SuspicionMult,
		"A suspected peer is declared dead after this many probe intervals (times log10 of the peer count above 10 peers), unless it refutes. Raise it for lossy networks.")
	fs.IntVar(&c.SuspicionMaxTimeoutMult, flagSuspicionMaxMult, d.SuspicionMaxTimeoutMult,
		"How many times longer a suspicion may last when other peers do not confirm it (in clusters of at least --"+flagSuspicionMult+" peers).")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.PeerName == "" {
		add("--%s is empty and the hostname is unknown; set it", flagPeerName)
	} else if len(c.PeerName) > maxPeerName {
		add("--%s is %d bytes long; at most %d are allowed", flagPeerName, len(c.PeerName), maxPeerName)
	}
	if _, _, err := splitHostPort(c.GRPCListenAddress); err != nil {
		add("--%s: %w", flagGRPCListenAddress, err)
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		add("--%s is %d bytes long; memberlist allows %d", flagLabel, len(c.Label), memberlist.LabelMaxSize)
	}
	if err := flagcheck.Durations(
		flagcheck.Duration{Flag: flagRejoinInterval, Value: c.RejoinInterval, ZeroOK: true},
		flagcheck.Duration{Flag: flagSettleTimeout, Value: c.SettleTimeout, ZeroOK: true},
		flagcheck.Duration{Flag: flagLeaveTimeout, Value: c.LeaveTimeout, ZeroOK: true},
		flagcheck.Duration{Flag: flagJoinTimeout, Value: c.JoinTimeout, ZeroOK: true},
		flagcheck.Duration{Flag: flagProbeInterval, Value: c.ProbeInterval},
		flagcheck.Duration{Flag: flagProbeTimeout, Value: c.ProbeTimeout},
		flagcheck.Duration{Flag: flagGossipInterval, Value: c.GossipInterval},
	); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateTimings()...)
	if c.ListenAddress == "" {
		if c.AdvertiseAddress != "" || len(c.Peers) > 0 || c.GossipKeyFile != "" {
			add("--%s, --%s and --%s need --%s", flagAdvertiseAddress, flagPeer, flagGossipKeyFile, flagListenAddress)
		}
		return errors.Join(errs...)
	}
	errs = append(errs, c.validateGossip()...)
	errs = append(errs, c.validateSecurity()...)
	return errors.Join(errs...)
}

// validateTimings checks what flagcheck does not: the multipliers, and
// that a probe leaves time for the indirect probes that follow a direct
// one that timed out.
func (c *Config) validateTimings() []error {
	var errs []error
	if c.ProbeTimeout > 0 && c.ProbeInterval > 0 && c.ProbeTimeout >= c.ProbeInterval {
		errs = append(errs, fmt.Errorf("--%s (%s) must be less than --%s (%s)",
			flagProbeTimeout, c.ProbeTimeout, flagProbeInterval, c.ProbeInterval))
	}
	for _, m := range []struct {
		flag  string
		value int
	}{{flagSuspicionMult, c.SuspicionMult}, {flagSuspicionMaxMult, c.SuspicionMaxTimeoutMult}} {
		if m.value < 1 {
			errs = append(errs, fmt.Errorf("--%s must be at least 1, got %d", m.flag, m.value))
		}
	}
	return errs
}

// validateGossip checks the addresses used when gossip is on.
func (c *Config) validateGossip() []error {
	var errs []error
	host, _, err := splitHostPort(c.ListenAddress)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("--%s: %w", flagListenAddress, err))
	case host != "" && !isIP(host):
		errs = append(errs, fmt.Errorf("--%s: host %q is not an IP address", flagListenAddress, host))
	case isWildcard(host) && host != "" && !isIPv4Wildcard(host) && c.AdvertiseAddress == "":
		// memberlist picks an address to advertise only for 0.0.0.0.
		errs = append(errs, fmt.Errorf("--%s %q needs --%s", flagListenAddress, c.ListenAddress, flagAdvertiseAddress))
	}
	if c.AdvertiseAddress != "" {
		host, _, err := splitHostPort(c.AdvertiseAddress)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--%s: %w", flagAdvertiseAddress, err))
		case !isIP(host) || isWildcard(host):
			errs = append(errs, fmt.Errorf("--%s: host %q is not a specific IP address", flagAdvertiseAddress, host))
		}
	}
	for _, p := range c.Peers {
		if host, _, err := splitHostPort(p); err != nil || host == "" {
			errs = append(errs, fmt.Errorf("--%s %q: want host:port", flagPeer, p))
		}
	}
	return errs
}

// splitHostPort splits a host:port and checks the port.
func splitHostPort(addr string) (host string, port int, err error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: want host:port: %w", addr, err)
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("address %q: invalid port %q", addr, ps)
	}
	return host, port, nil
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// isWildcard reports whether a listen host means "every address".
func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

func isIPv4Wildcard(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.Is4() && a.IsUnspecified()
}

// stringsValue is a repeatable string flag.
type stringsValue []string

func (s *stringsValue) String() string {
	if s == nil {
		return ""
	}
	return strings.Join(*s, ",")
}

func (s *stringsValue) Set(v string) error {
	*s = append(*s, v)
	return nil
}
