package cluster

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/pushring/pushring/internal/flagcheck"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
)

// Flag names of the cluster's data path; the membership's are shard's.
const (
	flagForwardTimeout = "cluster.forward-timeout"
	flagHandOffTimeout = "cluster.handoff-timeout"
	flagDrainTimeout   = "cluster.drain-timeout"
	flagFanoutTimeout  = "cluster.fanout-timeout"
	flagRF             = "cluster.replication-factor"
	flagReplicaTimeout = "cluster.replication-timeout"
	flagTombstoneTTL   = "cluster.tombstone-ttl"
	flagMaxBodyBytes   = "push.max-body-bytes"
	flagPersistFile    = "persistence.file"
)

// Defaults, in one place.
const (
	// DefaultForwardTimeout bounds one forwarded push: far above a push's
	// cost at the owner (milliseconds), and short enough that a stuck
	// owner's push still reaches its next owner well within the 10 s and
	// more that pushers' clients wait.
	DefaultForwardTimeout = 2 * time.Second
	// DefaultReplicationFactor is how many peers hold each group: one crash
	// loses nothing.
	DefaultReplicationFactor = 2
	// DefaultReplicationTimeout bounds the copy of a push's group to its
	// other owners; a replica that does not answer in time is repaired
	// later and does not fail the push.
	DefaultReplicationTimeout = time.Second
	// DefaultTombstoneTTL is how long a delete is remembered, so that a
	// copy older than it (a peer that returns, a persistence file, a late
	// hand-off) does not bring the group back.
	DefaultTombstoneTTL = 24 * time.Hour
	// DefaultHandOffTimeout bounds one hand-off batch.
	DefaultHandOffTimeout = 10 * time.Second
	// DefaultDrainTimeout bounds the hand-off of a leaving peer, before and
	// after its servers stop, together. With the leave broadcast, the HTTP
	// drain and the gRPC stop, a peer whose new owners do not answer exits
	// within 57 s at worst: deploy/k8s gives it a 60 s grace period.
	DefaultDrainTimeout = 20 * time.Second
	// DefaultFanoutTimeout bounds the calls behind the cluster-wide views:
	// a peer that takes longer is named as missing rather than holding
	// the answer.
	DefaultFanoutTimeout = 5 * time.Second
	// maxForwardedBody bounds --push.max-body-bytes in a cluster: the body
	// and the rest of a forwarded push fit in one peer message.
	maxForwardedBody = peerpb.MaxMessageBytes - 64<<10
	// maxReplicationFactor bounds --cluster.replication-factor: every copy
	// costs a write per push and memory on one more peer.
	maxReplicationFactor = 5
)

// Config configures the cluster: membership (package shard), forwarding,
// hand-off, drain and the fan-out behind the cluster views. With an empty
// Membership.ListenAddress the peer is a cluster of one.
type Config struct {
	// Membership configures gossip and placement.
	Membership shard.Config
	// ForwardTimeout bounds a push forwarded to its owner.
	ForwardTimeout time.Duration
	// HandOffTimeout bounds one hand-off batch.
	HandOffTimeout time.Duration
	// DrainTimeout bounds the hand-off of every group when the peer leaves:
	// one deadline for the passes before and after its servers stop.
	DrainTimeout time.Duration
	// FanoutTimeout bounds the calls to other peers behind the cluster
	// views and the cluster-wide wipe.
	FanoutTimeout time.Duration
	// TLSConfigFile is --cluster.tls-config: mutual TLS for the peer gRPC
	// and gossip (tls.go).
	TLSConfigFile string
	// ReplicationFactor is how many peers hold each group (its owners);
	// never more than the live members.
	ReplicationFactor int
	// ReplicationTimeout bounds the copy of a group to each other owner.
	ReplicationTimeout time.Duration
	// TombstoneTTL is how long a peer remembers a delete.
	TombstoneTTL time.Duration

	// Set by the binary from other packages' flags:

	// MaxBodyBytes is --push.max-body-bytes: a forwarded push travels in one
	// peer message, so in a cluster it must fit in one.
	MaxBodyBytes int64
	// AdminAPI is --web.enable-admin-api: another peer's wipe empties this
	// one only if it is set here too.
	AdminAPI bool
	// PersistenceFile is --persistence.file, for the log of a peer that
	// stops with groups no other peer took.
	PersistenceFile string
	// MaxInflight is --push.max-inflight: forwarding to one owner may hold
	// at most half of it (0: unbounded), so a stuck owner cannot take every
	// slot of the peers that forward to it.
	MaxInflight int
	// Received bounds what other peers send (validate.go): the push limits.
	Received ReceiveLimits
}

// DefaultConfig returns the defaults RegisterFlags registers.
func DefaultConfig() Config {
	return Config{
		Membership:     shard.DefaultConfig(),
		ForwardTimeout: DefaultForwardTimeout,
		HandOffTimeout: DefaultHandOffTimeout,
		DrainTimeout:   DefaultDrainTimeout,
		FanoutTimeout:  DefaultFanoutTimeout,

		ReplicationFactor:  DefaultReplicationFactor,
		ReplicationTimeout: DefaultReplicationTimeout,
		TombstoneTTL:       DefaultTombstoneTTL,
	}
}

// RegisterFlags registers every --cluster.* flag.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	c.Membership.RegisterFlags(fs)
	fs.DurationVar(&c.ForwardTimeout, flagForwardTimeout, d.ForwardTimeout,
		"Deadline of a push forwarded to the peer that owns its group. A push whose owner does not answer in time gets 503 with Retry-After.")
	fs.DurationVar(&c.HandOffTimeout, flagHandOffTimeout, d.HandOffTimeout,
		"Deadline of one batch of groups handed to their new owner after the cluster changed.")
	fs.DurationVar(&c.DrainTimeout, flagDrainTimeout, d.DrainTimeout,
		"How long a peer that shuts down spends handing its groups to their new owners before it exits.")
	fs.DurationVar(&c.FanoutTimeout, flagFanoutTimeout, d.FanoutTimeout,
		"Deadline of the calls to other peers behind the cluster-wide endpoints; a peer that does not answer in time is named as missing.")
	fs.IntVar(&c.ReplicationFactor, flagRF, d.ReplicationFactor,
		"How many peers hold each group: the first of them exposes it, the others keep copies and take over when it dies or leaves. 1 keeps one copy. Never more than the live members.")
	fs.DurationVar(&c.ReplicationTimeout, flagReplicaTimeout, d.ReplicationTimeout,
		"Deadline of the copy of a pushed group to each of its other owners. A copy that does not get through in time does not fail the push: the group is counted as under-replicated and repaired.")
	fs.DurationVar(&c.TombstoneTTL, flagTombstoneTTL, d.TombstoneTTL,
		"How long a peer remembers a delete, so that an older copy of the group (a peer or persistence file that returns, a late hand-off) does not bring it back. At most --store.max-groups deletes are remembered.")
	c.registerSecurityFlags(fs)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	errs := []error{c.Membership.Validate(), flagcheck.Durations(
		flagcheck.Duration{Flag: flagForwardTimeout, Value: c.ForwardTimeout},
		flagcheck.Duration{Flag: flagHandOffTimeout, Value: c.HandOffTimeout},
		flagcheck.Duration{Flag: flagDrainTimeout, Value: c.DrainTimeout},
		flagcheck.Duration{Flag: flagFanoutTimeout, Value: c.FanoutTimeout},
		flagcheck.Duration{Flag: flagReplicaTimeout, Value: c.ReplicationTimeout},
		flagcheck.Duration{Flag: flagTombstoneTTL, Value: c.TombstoneTTL},
	), c.validateSecurity()}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > maxReplicationFactor {
		errs = append(errs, fmt.Errorf("--%s must be between 1 and %d, got %d", flagRF, maxReplicationFactor, c.ReplicationFactor))
	}
	if c.clustered() && (c.MaxBodyBytes <= 0 || c.MaxBodyBytes > maxForwardedBody) {
		errs = append(errs, fmt.Errorf("in a cluster --%s must be between 1 and %d: a push forwarded to its owner travels in one gRPC message of at most %d bytes",
			flagMaxBodyBytes, maxForwardedBody, peerpb.MaxMessageBytes))
	}
	return errors.Join(errs...)
}

// clustered reports whether the peer gossips with others; a peer that
// does not is a cluster of one, with no peer protocol to serve.
func (c *Config) clustered() bool { return c.Membership.ListenAddress != "" }
