package ingest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// Flag names of the cluster's data path.
const (
	flagForwardTimeout = "cluster.forward-timeout"
	flagHandOffTimeout = "cluster.handoff-timeout"
	flagDrainTimeout   = "cluster.drain-timeout"
)

// Defaults of ClusterConfig.
const (
	// DefaultForwardTimeout bounds one forwarded push: far above a push's
	// cost at the owner (milliseconds), well below the 10 s and more that
	// pushers' clients wait.
	DefaultForwardTimeout = 5 * time.Second
	// DefaultHandOffTimeout bounds one hand-off batch.
	DefaultHandOffTimeout = 10 * time.Second
	// DefaultDrainTimeout bounds the hand-off of a leaving peer (before and
	// after its servers stop, together). With the leave broadcast, the HTTP
	// drain and the gRPC stop, a peer whose new owners do not answer exits
	// within 57 s at worst: deploy/k8s gives it a 60 s grace period.
	DefaultDrainTimeout = 20 * time.Second
	// handOffBatchBytes bounds the groups of one hand-off message, far
	// below peerpb.MaxMessageBytes; a single larger group goes alone.
	handOffBatchBytes = 4 << 20
	// maxForwardedBody bounds --push.max-body-bytes in a cluster: the body
	// and the rest of a forwarded push fit in one peer message.
	maxForwardedBody = peerpb.MaxMessageBytes - 64<<10
)

// ClusterConfig configures forwarding and hand-off.
type ClusterConfig struct {
	// ForwardTimeout bounds a push forwarded to its owner.
	ForwardTimeout time.Duration
	// HandOffTimeout bounds one hand-off batch.
	HandOffTimeout time.Duration
	// DrainTimeout bounds the hand-off of all groups when the peer leaves,
	// for the passes before and after the servers stop together.
	DrainTimeout time.Duration
}

// DefaultClusterConfig returns the defaults the flags register.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		ForwardTimeout: DefaultForwardTimeout,
		HandOffTimeout: DefaultHandOffTimeout,
		DrainTimeout:   DefaultDrainTimeout,
	}
}

// RegisterFlags registers the cluster data-path flags.
func (c *ClusterConfig) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultClusterConfig()
	fs.DurationVar(&c.ForwardTimeout, flagForwardTimeout, d.ForwardTimeout,
		"Deadline of a push forwarded to the peer that owns its group. A push whose owner does not answer in time gets 503 with Retry-After.")
	fs.DurationVar(&c.HandOffTimeout, flagHandOffTimeout, d.HandOffTimeout,
		"Deadline of one batch of groups handed to their new owner after the cluster changed.")
	fs.DurationVar(&c.DrainTimeout, flagDrainTimeout, d.DrainTimeout,
		"How long a peer that shuts down spends handing its groups to their new owners before it exits.")
}

// Validate checks the configuration.
func (c ClusterConfig) Validate() error {
	var errs []error
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{flagForwardTimeout, c.ForwardTimeout}, {flagHandOffTimeout, c.HandOffTimeout}, {flagDrainTimeout, c.DrainTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %s", d.flag, d.v))
		}
	}
	return errors.Join(errs...)
}

// Peer is a member of the cluster as the ingester sees it.
type Peer struct {
	ID   string
	Addr string // gRPC host:port; empty if the peer's address is unknown
}

// View is one immutable view of the cluster: who owns which group.
type View interface {
	// Owner returns the peer that owns groups with key hash h.
	Owner(h uint64) Peer
	// Without returns the view once peer id has left.
	Without(id string) View
	// Peers lists the members.
	Peers() []Peer
}

// Cluster is what the ingester needs of the membership.
type Cluster interface {
	// Self returns this peer's ID.
	Self() string
	// View returns the current view.
	View() View
	// Changed receives a value after the view changed.
	Changed() <-chan struct{}
}

// HandOffStore is what hand-off needs of the store besides Store.
type HandOffStore interface {
	Keys() []store.GroupKey
	Group(k store.GroupKey) (store.GroupSnapshot, bool)
	DeleteVersion(k store.GroupKey, v uint64) bool
	Tombstones() []store.Tombstone
	ForgetTombstone(k store.GroupKey, v uint64)
}

// Peers keeps one gRPC client connection per peer address, reused by every
// forwarded push, hand-off and fan-out to that peer. It is safe for
// concurrent use. Connections are made lazily (grpc.NewClient does not
// dial) and closed by Prune once their peer is gone, and all by Close.
type Peers struct {
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// NewPeers returns an empty pool.
func NewPeers() *Peers { return &Peers{conns: map[string]*grpc.ClientConn{}} }

// errNoAddress says a peer's metadata did not give its gRPC address.
var errNoAddress = errors.New("peer has no known gRPC address")

// Client returns a client of the peer at addr.
func (p *Peers) Client(addr string) (peerpb.PeerClient, error) {
	if addr == "" {
		return nil, errNoAddress
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("peer connections closed")
	}
	cc := p.conns[addr]
	if cc == nil {
		var err error
		cc, err = grpc.NewClient("passthrough:///"+addr, peerpb.DialOptions()...)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", addr, err)
		}
		p.conns[addr] = cc
	}
	return peerpb.NewPeerClient(cc), nil
}

// Prune closes the connections to addresses not in keep.
func (p *Peers) Prune(keep []Peer) {
	live := make(map[string]bool, len(keep))
	for _, k := range keep {
		live[k.Addr] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, cc := range p.conns {
		if !live[addr] {
			_ = cc.Close() // nothing to do about a failed close of a dead peer
			delete(p.conns, addr)
		}
	}
}

// Close closes every connection; later Client calls fail.
func (p *Peers) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, cc := range p.conns {
		_ = cc.Close()
		delete(p.conns, addr)
	}
}

// JoinCluster makes the ingester route pushes by c: a push whose group
// another peer owns is forwarded to it; RunHandOff and Drain move groups
// this peer no longer owns. Call it once, before the first push.
func (in *Ingester) JoinCluster(c Cluster, cfg ClusterConfig, peers *Peers, hs HandOffStore) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("cluster config: %w", err)
	}
	if in.cfg.MaxBodyBytes <= 0 || in.cfg.MaxBodyBytes > maxForwardedBody {
		return fmt.Errorf("in a cluster --%s must be between 1 and %d: a push forwarded to its owner travels in one gRPC message of at most %d bytes",
			flagMaxBodyBytes, maxForwardedBody, peerpb.MaxMessageBytes)
	}
	in.cluster = c
	in.handOffPoke = make(chan struct{}, 1)
	in.handOffSweep = handOffSweep
	in.clusterCfg = cfg
	in.peers = peers
	in.handOff = hs
	return nil
}

// view returns the view pushes are routed by: the cluster's, without this
// peer once it is leaving.
func (in *Ingester) view() View {
	v := in.cluster.View()
	if in.leaving.Load() {
		return v.Without(in.cluster.Self())
	}
	return v
}

// route returns the owner of the group with key when another peer owns it.
// A request that was forwarded to this peer is handled here, and so is one
// with a bad TTL header: it gets the same answer as at its owner.
func (in *Ingester) route(r Request, key store.GroupKey) (Peer, bool) {
	if in.cluster == nil || r.Forwarded {
		return Peer{}, false
	}
	owner := in.view().Owner(key.Hash())
	if owner.ID == in.cluster.Self() || owner.ID == "" {
		return Peer{}, false
	}
	if vals, ok := r.Header[ttlHeaderKey]; ok && r.Method != http.MethodDelete {
		if _, err := in.ttlFor(key.Labels(), vals); err != nil {
			return Peer{}, false // refused here as at the owner, before the body is read
		}
	}
	return owner, true
}

// RemoteError is the answer of the owner of a forwarded push other than
// success: its status code and body, relayed to the pusher verbatim.
type RemoteError struct {
	Code       int
	Body       string
	RetryAfter int // seconds; 0: no Retry-After header
}

func (e *RemoteError) Error() string { return e.Body }

// ErrOwnerUnavailable wraps the failure to forward a push to its owner
// (unreachable, too slow, or unknown address): 503 with Retry-After.
var ErrOwnerUnavailable = errors.New("the peer that owns this group is unavailable")

// RetryAfter returns the Retry-After seconds that go with err's answer,
// and whether there are any: overload and an unavailable owner say 1 s,
// an owner's relayed answer says what the owner said.
func RetryAfter(err error) (int, bool) {
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		return re.RetryAfter, re.RetryAfter > 0
	case errors.Is(err, ErrOverloaded), errors.Is(err, ErrOwnerUnavailable):
		return 1, true
	}
	return 0, false
}

// forward sends r to its owner and returns the owner's answer.
func (in *Ingester) forward(ctx context.Context, owner Peer, r Request, key store.GroupKey) (Result, string, error) {
	start := time.Now()
	body, over, err := in.readRaw(r)
	if err != nil {
		return Result{}, bodyReason(err), err
	}
	if over {
		// Over the limit as received: the owner would refuse it with 413,
		// and which of its messages (compressed or decompressed size)
		// depends on the body. The same decoding here gives the same
		// answer without shipping the body.
		r.Body = io.MultiReader(bytes.NewReader(body), r.Body)
		return in.push(ctx, r, key, nil)
	}
	client, err := in.peers.Client(owner.Addr)
	if err != nil {
		in.metrics.forwarded.WithLabelValues(forwardUnavailable).Inc()
		return Result{}, reasonOwnerUnavailable, in.unavailable(owner, err)
	}
	ctx, cancel := context.WithTimeout(ctx, in.clusterCfg.ForwardTimeout)
	defer cancel()
	resp, err := client.Push(ctx, &peerpb.PushRequest{
		Method:          r.Method,
		Path:            r.Path,
		ContentType:     r.ContentType,
		ContentEncoding: r.ContentEncoding,
		Body:            body,
		Ttl:             firstValue(r.Header[ttlHeaderKey]),
		Forwarded:       true,
		OriginPeer:      in.cluster.Self(),
	})
	in.metrics.forwardSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		in.metrics.forwarded.WithLabelValues(forwardUnavailable).Inc()
		return Result{}, reasonOwnerUnavailable, in.unavailable(owner, err)
	}
	code := int(resp.GetStatusCode())
	if code >= 200 && code < 300 {
		in.metrics.forwarded.WithLabelValues(forwardOK).Inc()
		return Result{Status: code, forwarded: true}, "", nil
	}
	in.metrics.forwarded.WithLabelValues(forwardRefused).Inc()
	// The owner counted the rejection under its reason; "" keeps this
	// peer from counting it again.
	return Result{}, "", &RemoteError{Code: code, Body: resp.GetBody(), RetryAfter: int(resp.GetRetryAfterSeconds())}
}

// unavailable describes a failed forward for the pusher.
func (in *Ingester) unavailable(owner Peer, err error) error {
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.DeadlineExceeded:
			err = fmt.Errorf("no answer within --%s=%s", flagForwardTimeout, in.clusterCfg.ForwardTimeout)
		case codes.Canceled:
			err = errors.New("the request was cancelled")
		default:
			err = errors.New(s.Message())
		}
	}
	return fmt.Errorf("%w: peer %q: %v; retry later", ErrOwnerUnavailable, owner.ID, err)
}

// readRaw reads a body to forward as it came, compressed or not. It stops
// after --push.max-body-bytes + 1 bytes and reports over: a body that long
// is refused by the owner whatever its encoding (the compressed size is held
// to the same limit), so it is not forwarded.
func (in *Ingester) readRaw(r Request) (body []byte, over bool, err error) {
	if r.Method == http.MethodDelete || r.Body == nil {
		return nil, false, nil // the body of a DELETE is ignored
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, in.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, false, asBadRequest(fmt.Errorf("read push body: %w", err))
	}
	return b, int64(len(b)) > in.cfg.MaxBodyBytes, nil
}

func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// Values of the result label of pushring_forwarded_pushes_total.
const (
	forwardOK          = "ok"
	forwardRefused     = "refused"
	forwardUnavailable = "unavailable"
)
