package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// Ingester is what the cluster needs of the ingester: it reads a request
// without its body, and applies it on this peer. Its methods are safe for
// concurrent use; Apply may block until the write is applied or refused.
type Ingester interface {
	Parse(r ingest.Request) ingest.Parsed
	Apply(ctx context.Context, p ingest.Parsed) (ingest.Result, error)
	// CountOverloaded and CountUnavailable count a push refused before
	// the ingester saw it, under its rejection reasons. They never block.
	CountOverloaded()
	CountUnavailable()
	// ForwardedBody wraps the decompressed body of a push another peer
	// forwarded as the ingester wants it.
	ForwardedBody(b []byte) io.Reader
}

// Store is what the cluster needs of the local store. Its methods are safe
// for concurrent use, never block on I/O, and return data the caller owns.
type Store interface {
	handOffSource
	// Receive and ReceiveDelete store a group or a delete handed over by
	// another peer, keeping the newer version.
	Receive(gs store.GroupSnapshot) (bool, error)
	ReceiveDelete(k store.GroupKey, v uint64) bool
	// Snapshot, Stats and Wipe serve the cluster views and wipe.
	Snapshot() []store.GroupSnapshot
	Stats() (groups, series int)
	Wipe() int
	// Entries, TombstoneOf and GroupWire serve replication and repair.
	Entries() []store.Entry
	GroupWire(k store.GroupKey) (store.WireGroup, bool)
	TombstoneOf(k store.GroupKey) (uint64, bool)
}

// handOffSource is what hand-off reads of the store: the groups and deletes
// it holds, and the removal of a copy its new owner took.
type handOffSource interface {
	Keys() []store.GroupKey
	Group(k store.GroupKey) (store.GroupSnapshot, bool)
	DeleteVersion(k store.GroupKey, v uint64) bool
	Tombstones() []store.Tombstone
	ForgetTombstone(k store.GroupKey, v uint64)
}

// Admission bounds the pushes a peer handles at once. A push forwarded to
// this peer takes a slot as an HTTP push does. Acquire may wait a bounded
// time; every successful Acquire is followed by one Release.
type Admission interface {
	Acquire(ctx context.Context) error
	Release()
}

// Budget charges a push forwarded to this peer to the memory budget HTTP
// pushes are charged to, before it takes a slot; release gives it back once
// the push is applied or refused. An error is the push's answer.
type Budget interface {
	ChargeForwarded(body []byte, contentType string) (release func(), err error)
}

// Deps are the components the cluster works with; the binary hands it the
// concrete ones.
type Deps struct {
	Ingester  Ingester
	Store     Store
	Admission Admission
	Budget    Budget
	// Answer maps an error of a push to the HTTP status and Retry-After
	// seconds (0: none) the pusher gets: the owner of a forwarded push
	// answers as it would over HTTP, for the peer that took the push to
	// relay. It is the api's one error-to-status mapper.
	Answer func(error) (code, retryAfter int)
	// HTTPAddr is the bound HTTP address this peer advertises.
	HTTPAddr string
}

// grpcStopTimeout bounds the graceful stop of the peer gRPC server: calls
// in flight are forwarded pushes and hand-off batches, each with its own
// deadline.
const grpcStopTimeout = 10 * time.Second

// Cluster is this peer's part in the cluster: its membership, the peer
// protocol it serves and calls, where a push goes, hand-off and drain,
// and the fan-out behind the cluster views. A peer without a gossip
// address is a cluster of one: it owns every group and serves no peer
// protocol, through the same code.
//
// Its lifecycle: New, then Run on a goroutine of its own; when the process
// stops, Leave (hand over, then leave, while HTTP still serves and
// forwards), then, once the HTTP servers stopped, Close, which makes Run
// return. Every other method is safe for concurrent use at any time.
type Cluster struct {
	cfg     Config
	self    string
	ing     Ingester
	st      Store
	admit   Admission
	budget  Budget
	answer  func(error) (int, int)
	logger  *slog.Logger
	metrics *metrics
	members *shard.Membership
	ring    *shard.Ring // the members' placement; tests set their own
	conns   *conns
	tls     *peerTLS // nil without --cluster.tls-config
	checks  *receiveChecks
	// breakers pass over an owner that keeps failing, and bound the calls
	// in flight to each.
	breakers *breakers
	// live leaves out of the placement the members whose process is gone
	// before memberlist declares them dead (liveness.go).
	live    *liveness
	grpcLis net.Listener // nil for a cluster of one
	server  *grpc.Server // nil for a cluster of one

	// leaving is the one leaving state: set by Leave, it makes the peer
	// not ready, routes every push as if this peer had gone, and refuses
	// hand-offs to it.
	leaving   atomic.Bool
	drainEnd  time.Time // set by Leave; read by Close, after it
	handedOff int       // groups Leave's pass handed over; read by Close
	alone     bool      // no other member when Leave began; read by Close
	poke      chan struct{}
	sweep     time.Duration // a hand-off pass runs at least this often; tests lengthen it

	running   atomic.Bool // Run was called
	closeOnce sync.Once
	closed    chan struct{} // closed by Close; ends Run
}

// New builds this peer's cluster and, for a clustered peer, binds its
// listeners: the peer gRPC listener (its bound address is advertised) and
// gossip. Call Close if the process stops before Run.
func New(cfg Config, deps Deps, logger *slog.Logger, reg prometheus.Registerer) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{
		cfg: cfg, ing: deps.Ingester, st: deps.Store, admit: deps.Admission, budget: deps.Budget, answer: deps.Answer,
		logger: logger, metrics: newMetrics(reg), breakers: newBreakers(cfg.MaxInflight / 2), live: newLiveness(),
		checks: newReceiveChecks(cfg.Received, reg),
		poke:   make(chan struct{}, 1), sweep: handOffSweep, closed: make(chan struct{}),
	}
	if err := c.setUpPeerPlane(); err != nil {
		return nil, err
	}
	c.conns = newConns(c.watch, c.dialOptions)
	mcfg := c.cfg.Membership
	if cfg.clustered() {
		l, err := net.Listen("tcp", c.grpcListenAddress())
		if err != nil {
			return nil, fmt.Errorf("listen on --cluster.grpc-listen-address %s: %w", mcfg.GRPCListenAddress, err)
		}
		c.grpcLis = l
		mcfg.GRPCListenAddress = l.Addr().String() // the bound port, for :0
		c.server = grpc.NewServer(c.serverOptions()...)
		peerpb.RegisterPeerServer(c.server, &server{c: c})
	}
	m, err := shard.New(mcfg, deps.HTTPAddr, logger, reg)
	if err != nil {
		c.closeListener()
		return nil, err
	}
	c.members, c.ring = m, m.Ring()
	c.self = m.Self().ID
	if err := m.Start(); err != nil {
		c.closeListener()
		return nil, err
	}
	return c, nil
}

// Run joins the seeds, serves the peer protocol and hands over the groups
// this peer no longer owns, until Close, or until one of these fails (the
// caller then stops the process: Leave, then Close).
func (c *Cluster) Run(ctx context.Context) error {
	c.running.Store(true)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.members.Run(ctx); err != nil {
			errs <- fmt.Errorf("membership: %w", err)
		}
	})
	if c.server != nil {
		c.logger.Info("peer gRPC listening", "address", c.grpcLis.Addr().String())
		wg.Go(func() {
			if err := c.server.Serve(c.grpcLis); err != nil {
				errs <- fmt.Errorf("peer gRPC server: %w", err)
			}
		})
	}
	wg.Go(func() {
		if c.join(ctx) {
			c.runHandOff(ctx)
		}
	})
	var err error
	select {
	case <-c.closed:
	case err = <-errs:
	}
	cancel()
	wg.Wait()
	return err
}

// Leave is the step "hand over, then leave": the peer turns not ready,
// routes every push as if it had gone (HTTP keeps serving and forwards
// them), tells the cluster it leaves, and hands its groups to their new
// owners until none is left or --cluster.drain-timeout has passed. It
// returns when that is done; later calls do nothing.
func (c *Cluster) Leave() {
	if c.leaving.Swap(true) {
		return
	}
	c.drainEnd = time.Now().Add(c.cfg.DrainTimeout)
	c.alone = alone(c.ring.Placement(), c.self)
	if !c.alone {
		groups, _ := c.st.Stats()
		c.logger.Info("leaving the cluster: handing the groups over", "groups", groups, "drain_timeout", c.cfg.DrainTimeout)
	}
	if err := c.members.Close(); err != nil {
		c.logger.Warn("leaving the cluster", "err", err)
	}
	c.handedOff, _ = c.drain(c.drainEnd)
}

// finalDrainMin is the least the last hand-off gets, for the groups that
// forwarded pushes stored here while the servers drained.
const finalDrainMin = 2 * time.Second

// Close stops the peer protocol once the HTTP servers have stopped: the
// gRPC server stops gracefully (bounded), whatever forwarded pushes stored
// here meanwhile is handed over within what is left of the drain deadline,
// the outcome is logged once, and Run returns. It calls Leave first if no
// one did. Later calls do nothing.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		defer close(c.closed)
		if !c.running.Load() {
			// The process stops before it served: release what New bound.
			c.leaving.Store(true)
			_ = c.members.Close() // nobody joined: nothing to announce
			c.stopServer()
			return
		}
		c.Leave()
		c.stopServer()
		handed, left := c.drain(later(c.drainEnd, time.Now().Add(finalDrainMin)))
		c.reportLeftBehind(c.handedOff+handed, left, c.alone)
		c.conns.close()
	})
}

// stopServer stops the peer gRPC server gracefully, forcibly after
// grpcStopTimeout.
func (c *Cluster) stopServer() {
	if c.server == nil {
		return
	}
	stopped := make(chan struct{})
	go func() {
		c.server.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(grpcStopTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		c.server.Stop()
		<-stopped
	}
	c.closeListener() // Serve closes it; a server that never served did not
}

func (c *Cluster) closeListener() {
	if c.grpcLis != nil {
		_ = c.grpcLis.Close() // closed already when the server served
	}
}

// Ready reports whether this peer serves as a member of its cluster: nil
// once it has joined and its view of the members has settled, an error
// saying why not while it joins or once it leaves.
func (c *Cluster) Ready() error {
	switch {
	case c.leaving.Load():
		return errLeaving
	case !c.members.Settled():
		return errJoining
	case !c.members.Serving():
		return errTakingState
	}
	return nil
}

var (
	errLeaving     = errors.New("leaving the cluster")
	errJoining     = errors.New("joining the cluster: membership not settled yet")
	errTakingState = errors.New("joining the cluster: taking the newest state of the groups this peer will own")
)

// Self returns this peer's member id.
func (c *Cluster) Self() string { return c.self }

// placement is the view pushes are routed by: the members' placement,
// without the members whose process is gone, and without this peer while
// it joins (it takes the state of its groups first) and once it is
// leaving.
func (c *Cluster) placement() *shard.Placement { return c.view(false) }

// view is placement; for exposure, a member found gone is left out only
// once it has been gone for exposeAfter.
func (c *Cluster) view(forExposure bool) *shard.Placement {
	p := c.live.without(c.ring.Placement(), forExposure)
	if c.leaving.Load() || !c.members.Serving() {
		return p.Without(c.self)
	}
	return p
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
