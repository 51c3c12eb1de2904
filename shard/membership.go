package shard

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("cluster membership closed")

// States of the members PeerInfo lists.
const (
	// StateAlive is a member that serves: placement gives it groups.
	StateAlive = "alive"
	// StateJoining is a member that takes the state of the groups it will
	// own before it serves; placement leaves it out meanwhile.
	StateJoining = "joining"
)

// PeerInfo describes one member for the cluster status API.
type PeerInfo struct {
	Member
	// GossipAddr is the memberlist address; empty for a single peer.
	GossipAddr string
	// State is StateAlive or StateJoining: members that memberlist declared
	// dead or that left are not listed. (memberlist's suspicion of a member is not
	// reported: it changes its node in place without an event, so it cannot
	// be read without racing.)
	State string
	// Self marks this peer.
	Self bool
	// Joined is when the peer's membership started, as it advertises it;
	// zero for a peer that does not.
	Joined time.Time
}

// Membership keeps this peer in the cluster and the Ring in step with the
// live members. With an empty Config.ListenAddress it is a single peer: no
// gossip, and its Ring holds only itself.
//
// Ring, Self, Peers and Settled are safe for concurrent use and return at
// once: they never wait on the network or on the lifecycle. Start, Run and
// Close manage the lifecycle: Run (or Start, then Run) once; Run calls
// Close when its context ends, and Close may also be called directly, for
// example when the process fails between Start and Run. Close waits for a
// Start in progress, whose join is bounded by memberlist's TCP timeout per
// seed address.
type Membership struct {
	cfg      Config
	httpAddr string
	logger   *slog.Logger
	metrics  *metrics
	ring     *Ring
	self     atomic.Pointer[Member]
	meta     metaDelegate
	events   *eventDelegate
	poke     chan struct{}       // capacity 1; see eventDelegate
	keyring  *memberlist.Keyring // nil without --cluster.gossip-key-file

	// startedAt is when New ran; peers advertise it as when they joined.
	startedAt time.Time

	// Replaced by tests.
	now        func() time.Time
	lookupHost func(ctx context.Context, host string) ([]string, error)

	ml         atomic.Pointer[memberlist.Memberlist] // nil until Start, and for a single peer
	gossipAddr string                                // this peer's gossip address, set by Start (memberlist's own node changes under UpdateNode)
	joinDone   atomic.Bool                           // the joins at start are over
	joined     chan struct{}                         // closed when joinDone is set
	serving    atomic.Bool                           // Serve was called (always, for a single peer)
	leaving    atomic.Bool                           // Close has begun
	lastChange atomic.Int64                          // UnixNano of the last placement change

	lifeMu     sync.Mutex // serialises Start and Close
	started    bool
	startErr   error
	closing    chan struct{} // closed by Close; ends Run
	stopWorker chan struct{}
	workerDone chan struct{}
}

// New returns the membership of this peer; httpAddr is the HTTP listen
// address it advertises (a wildcard host is replaced by the advertised
// host). Nothing listens until Start.
func New(cfg Config, httpAddr string, logger *slog.Logger, reg prometheus.Registerer) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{
		cfg:        cfg,
		httpAddr:   httpAddr,
		logger:     logger,
		metrics:    newMetrics(reg),
		poke:       make(chan struct{}, 1),
		now:        time.Now,
		lookupHost: net.DefaultResolver.LookupHost,
		closing:    make(chan struct{}),
		joined:     make(chan struct{}),
		stopWorker: make(chan struct{}),
		workerDone: make(chan struct{}),
	}
	m.startedAt = m.now()
	m.serving.Store(cfg.ListenAddress == "") // a single peer has no one to take state from
	kr, err := newKeyring(cfg.GossipKeyFile)
	if err != nil {
		return nil, err
	}
	m.keyring = kr
	self := m.memberAt(advertiseHost(cfg))
	if err := m.setSelf(self); err != nil {
		return nil, err
	}
	p, err := NewPlacement([]Member{self})
	if err != nil {
		return nil, err
	}
	m.ring = NewRing(p)
	m.events = &eventDelegate{poke: m.poke, changes: m.metrics.changes}
	m.metrics.members.Set(1)
	return m, nil
}

// Ring returns the ring that follows the live members. It always holds
// this peer; after Close it keeps its last placement.
func (m *Membership) Ring() *Ring { return m.ring }

// Self returns this peer as a member, with the addresses it advertises.
func (m *Membership) Self() Member { return *m.self.Load() }

// Settled reports whether the peer may serve as part of the cluster: a
// single peer always; otherwise once the joins at start are over (it
// shares a member list with another peer, its seeds name no other peer,
// or --cluster.join-timeout passed) and the member list has then not
// changed for Config.SettleTimeout. A closing peer is not settled.
func (m *Membership) Settled() bool {
	switch {
	case m.leaving.Load():
		return false
	case m.cfg.ListenAddress == "":
		return true
	case !m.joinDone.Load():
		return false
	}
	return m.now().Sub(time.Unix(0, m.lastChange.Load())) >= m.cfg.SettleTimeout
}

// Peers lists the live members as memberlist sees them, sorted by ID.
func (m *Membership) Peers() []PeerInfo {
	ml := m.ml.Load()
	if ml == nil {
		return []PeerInfo{{Member: m.Self(), State: StateAlive, Self: true, Joined: m.startedAt}}
	}
	nodes := m.events.members()
	peers := make([]PeerInfo, 0, len(nodes))
	for _, n := range nodes {
		mb, joining := m.memberOf(n)
		state := StateAlive
		if joining {
			state = StateJoining
		}
		peers = append(peers, PeerInfo{
			Member:     mb,
			GossipAddr: n.addr,
			State:      state,
			Self:       n.name == m.cfg.PeerName,
			Joined:     joinedOf(n),
		})
	}
	slices.SortFunc(peers, func(a, b PeerInfo) int { return strings.Compare(a.ID, b.ID) })
	return peers
}

// Start binds the gossip listener and starts the membership worker; Run
// joins the seeds. Start does nothing for a single peer, and only its
// first call does anything.
func (m *Membership) Start() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.leaving.Load() {
		return ErrClosed
	}
	if !m.started {
		m.started = true
		m.startErr = m.start()
	}
	return m.startErr
}

func (m *Membership) start() error {
	if m.cfg.ListenAddress == "" {
		m.logger.Info("no cluster listen address: running as a single peer", "peer", m.cfg.PeerName)
		m.markJoined()
		return nil
	}
	mc := m.memberlistConfig()
	if err := m.secure(mc); err != nil {
		return err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		if mc.Transport != nil {
			_ = mc.Transport.Shutdown() // the error that matters is err
		}
		return fmt.Errorf("start gossip on %s: %w", m.cfg.ListenAddress, err)
	}
	if advertiseHost(m.cfg) == "" {
		if err := m.advertiseChosenHost(ml); err != nil {
			_ = ml.Shutdown() // the error that matters is err
			return err
		}
	}
	m.gossipAddr = ml.LocalNode().Address()
	m.ml.Store(ml)
	m.lastChange.Store(m.now().UnixNano())
	m.refresh() // the first placement, before the worker: the ring has one writer
	go m.work()
	m.logger.Info("gossip started", "peer", m.cfg.PeerName, "gossip_address", ml.LocalNode().Address(),
		"grpc_address", m.Self().GRPCAddr, "http_address", m.Self().HTTPAddr)
	return nil
}

// advertiseChosenHost advertises the gRPC and HTTP addresses with the host
// memberlist chose for a wildcard listen address, which is known only once
// it runs. Nobody has joined yet, so the update reaches every later peer.
func (m *Membership) advertiseChosenHost(ml *memberlist.Memberlist) error {
	if err := m.setSelf(m.memberAt(ml.LocalNode().Addr.String())); err != nil {
		return err
	}
	if err := ml.UpdateNode(m.cfg.LeaveTimeout); err != nil {
		m.logger.Warn("advertise node metadata", "err", err)
	}
	return nil
}

// Run starts the membership if Start has not, joins the seeds (see
// joinAtStart), re-joins them every Config.RejoinInterval, and leaves the
// cluster when ctx ends. It returns the error of leaving, or nil after
// Close.
func (m *Membership) Run(ctx context.Context) error {
	if err := m.Start(); err != nil {
		return err
	}
	if ml := m.ml.Load(); ml != nil {
		m.joinAtStart(ctx, ml)
	}
	m.markJoined()
	var tick <-chan time.Time
	if ml := m.ml.Load(); ml != nil && m.cfg.RejoinInterval > 0 && len(m.cfg.Peers) > 0 {
		t := time.NewTicker(m.cfg.RejoinInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return m.Close()
		case <-m.closing:
			return nil
		case <-tick:
			m.rejoin(ctx, m.ml.Load())
		}
	}
}

// markJoined records that the joins at start are over.
func (m *Membership) markJoined() {
	if !m.joinDone.Swap(true) {
		close(m.joined)
	}
}

// Joined is closed once the joins at start are over (see Settled). The
// peer is then a member, joining until Serve.
func (m *Membership) Joined() <-chan struct{} { return m.joined }

// Serving reports whether Serve was called (always true for a single
// peer).
func (m *Membership) Serving() bool { return m.serving.Load() }

// Serve tells the cluster that this peer serves: it took the state of the
// groups it owns, and other peers may now place groups on it. It waits up
// to Config.LeaveTimeout for the news to go out; later calls do nothing.
func (m *Membership) Serve() error {
	if m.serving.Swap(true) {
		return nil
	}
	if err := m.setSelf(m.Self()); err != nil {
		return err
	}
	ml := m.ml.Load()
	if ml == nil {
		return nil
	}
	if err := ml.UpdateNode(m.cfg.LeaveTimeout); err != nil {
		return fmt.Errorf("announce that this peer serves: %w", err)
	}
	select {
	case m.poke <- struct{}{}:
	default:
	}
	return nil
}

// Close leaves the cluster (waiting up to Config.LeaveTimeout for the
// leave message to go out), stops gossip and the worker, and waits for the
// worker. Calls after the first return nil. It may be called while Run
// joins: the joins stop.
func (m *Membership) Close() error {
	if m.leaving.Swap(true) {
		return nil
	}
	close(m.closing)
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	ml := m.ml.Load()
	if ml == nil {
		return nil
	}
	var errs []error
	if err := ml.Leave(m.cfg.LeaveTimeout); err != nil {
		errs = append(errs, fmt.Errorf("leave cluster: %w", err))
	}
	errs = append(errs, m.stop(ml))
	m.logger.Info("left the cluster", "peer", m.cfg.PeerName)
	return errors.Join(errs...)
}

// stop shuts gossip down and joins the worker.
func (m *Membership) stop(ml *memberlist.Memberlist) error {
	var err error
	if e := ml.Shutdown(); e != nil {
		err = fmt.Errorf("stop gossip: %w", e)
	}
	close(m.stopWorker)
	<-m.workerDone
	return err
}

// memberlistConfig is memberlist's LAN defaults with our addresses,
// timings, delegates and logger.
func (m *Membership) memberlistConfig() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = m.cfg.PeerName
	host, port, _ := splitHostPort(m.cfg.ListenAddress) // Validate checked it
	if host == "" {
		host = "0.0.0.0"
	}
	c.BindAddr, c.BindPort, c.AdvertisePort = host, port, port
	if m.cfg.AdvertiseAddress != "" {
		c.AdvertiseAddr, c.AdvertisePort, _ = splitHostPort(m.cfg.AdvertiseAddress)
	}
	c.Label = m.cfg.Label
	c.ProbeInterval, c.ProbeTimeout = m.cfg.ProbeInterval, m.cfg.ProbeTimeout
	c.GossipInterval = m.cfg.GossipInterval
	c.SuspicionMult, c.SuspicionMaxTimeoutMult = m.cfg.SuspicionMult, m.cfg.SuspicionMaxTimeoutMult
	c.Delegate = &m.meta
	c.Events = m.events
	c.Logger = log.New(logWriter{logger: m.logger.With("subsystem", "memberlist"), closing: &m.leaving}, "", 0)
	if m.cfg.tune != nil {
		m.cfg.tune(c)
	}
	return c
}

// memberAt is this peer with its gRPC and HTTP listen addresses
// advertised at host.
func (m *Membership) memberAt(host string) Member {
	return Member{
		ID:       m.cfg.PeerName,
		GRPCAddr: advertisedAddr(m.cfg.GRPCListenAddress, host),
		HTTPAddr: advertisedAddr(m.httpAddr, host),
	}
}

// setSelf makes self the member this peer advertises.
func (m *Membership) setSelf(self Member) error {
	b, err := NodeMeta{GRPCAddr: self.GRPCAddr, HTTPAddr: self.HTTPAddr, Joining: !m.serving.Load(), Started: m.startedAt.UnixMilli()}.Encode()
	if err != nil {
		return fmt.Errorf("advertise peer %s: %w", self.ID, err)
	}
	m.meta.set(b)
	m.self.Store(&self)
	return nil
}

// memberOf is the member a node describes, and whether it is joining. A
// node whose metadata does not decode keeps its place with empty
// addresses: owners must not depend on what a peer can decode.
func (m *Membership) memberOf(n node) (Member, bool) {
	meta, err := DecodeNodeMeta(n.meta)
	if err != nil {
		m.logger.Warn("unreadable peer metadata; the peer cannot be dialled", "peer", n.name, "err", err)
	}
	return Member{ID: n.name, GRPCAddr: meta.GRPCAddr, HTTPAddr: meta.HTTPAddr}, meta.Joining
}

// joinedOf is when the peer a node describes started its membership, zero
// if its metadata does not say.
func joinedOf(n node) time.Time {
	meta, err := DecodeNodeMeta(n.meta)
	if err != nil || meta.Started <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(meta.Started)
}

// advertiseHost is the host this peer advertises its addresses at when the
// configuration says: the advertise address, else a specific listen IP.
// Empty means memberlist chooses (or a single peer, which advertises
// nothing).
func advertiseHost(cfg Config) string {
	if cfg.AdvertiseAddress != "" {
		host, _, _ := net.SplitHostPort(cfg.AdvertiseAddress)
		return host
	}
	if host, _, err := net.SplitHostPort(cfg.ListenAddress); err == nil && !isWildcard(host) {
		return host
	}
	return ""
}

// advertisedAddr is listen as other peers must dial it: a wildcard host
// (":9092", "0.0.0.0:9092", "[::]:9092") becomes host. listen is returned
// unchanged when host is empty or listen is not host:port.
func advertisedAddr(listen, host string) string {
	lh, port, err := net.SplitHostPort(listen)
	if err != nil || host == "" || !isWildcard(lh) {
		return listen
	}
	return net.JoinHostPort(host, port)
}
