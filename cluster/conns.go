package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
)

// conns keeps one gRPC client connection per peer address, reused by every
// forwarded push, hand-off and fan-out to that peer. It is safe for
// concurrent use. Connections are made lazily (grpc.NewClient does not
// dial), closed by prune once their peer is gone, and all by close. Each
// connection has a watcher goroutine (see liveness.go), which ends when
// the connection is closed; close waits for every watcher.
type conns struct {
	dial    func(addr string) []grpc.DialOption
	watcher watcher // nil: no watchers

	ctx      context.Context
	cancel   context.CancelFunc
	watchers sync.WaitGroup

	mu     sync.Mutex
	byAddr map[string]*grpc.ClientConn
	closed bool
}

// watcher follows one connection until it shuts down or ctx ends.
type watcher func(ctx context.Context, addr string, client peerpb.PeerClient,
	state func() connectivity.State, changed func(context.Context, connectivity.State) bool, connect func())

// newConns makes the connections with the dial options dial gives an
// address, and watches each with w.
func newConns(w watcher, dial func(addr string) []grpc.DialOption) *conns {
	ctx, cancel := context.WithCancel(context.Background())
	return &conns{watcher: w, dial: dial, ctx: ctx, cancel: cancel, byAddr: map[string]*grpc.ClientConn{}}
}

// errNoAddress says a peer's metadata did not give its gRPC address.
var errNoAddress = errors.New("peer has no known gRPC address")

// client returns a client of the peer at addr.
func (p *conns) client(addr string) (peerpb.PeerClient, error) {
	if addr == "" {
		return nil, errNoAddress
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("peer connections closed")
	}
	cc := p.byAddr[addr]
	if cc == nil {
		var err error
		cc, err = grpc.NewClient("passthrough:///"+addr, p.dial(addr)...)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", addr, err)
		}
		p.byAddr[addr] = cc
		if p.watcher != nil {
			client := peerpb.NewPeerClient(cc)
			p.watchers.Go(func() { p.watcher(p.ctx, addr, client, cc.GetState, cc.WaitForStateChange, cc.Connect) })
		}
	}
	return peerpb.NewPeerClient(cc), nil
}

// prune closes the connections to addresses no member in keep has.
func (p *conns) prune(keep []shard.Member) {
	live := make(map[string]bool, len(keep))
	for _, k := range keep {
		live[k.GRPCAddr] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, cc := range p.byAddr {
		if !live[addr] {
			_ = cc.Close() // nothing to do about a failed close of a dead peer
			delete(p.byAddr, addr)
		}
	}
}

// close closes every connection and waits for their watchers; later
// client calls fail.
func (p *conns) close() {
	p.mu.Lock()
	p.closed = true
	for addr, cc := range p.byAddr {
		_ = cc.Close()
		delete(p.byAddr, addr)
	}
	p.mu.Unlock()
	p.cancel()
	p.watchers.Wait()
}
