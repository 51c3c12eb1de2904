package cluster

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
)

// conns keeps one gRPC client connection per peer address, reused by every
// forwarded push, hand-off and fan-out to that peer. It is safe for
// concurrent use. Connections are made lazily (grpc.NewClient does not
// dial), closed by prune once their peer is gone, and all by close.
type conns struct {
	dial   func(addr string) []grpc.DialOption
	mu     sync.Mutex
	byAddr map[string]*grpc.ClientConn
	closed bool
}

func newConns(dial func(addr string) []grpc.DialOption) *conns {
	return &conns{dial: dial, byAddr: map[string]*grpc.ClientConn{}}
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

// close closes every connection; later client calls fail.
func (p *conns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, cc := range p.byAddr {
		_ = cc.Close()
		delete(p.byAddr, addr)
	}
}
