package cluster

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
)

// A peer whose process died is noticed by memberlist within seconds
// (probe, suspicion, death). Its gRPC connections tell sooner: the kernel
// closes a dead process's sockets at once, and a connection to its port
// is then refused. When a connection to a member drops, the peer probes it
// once; a refused connection (not a timeout: a frozen or cut-off peer
// times out, and keeps its place until memberlist decides) marks the
// member gone, and this peer's placement leaves it out until memberlist
// catches up, a connection to it is up again, or goneFor passes. The mark
// is for that process: once the member is no longer in the placement
// (memberlist dropped it, or it restarted and joins again) or advertises
// another gRPC address, it goes. Its groups' next
// owners then take its pushes and expose its groups at their next scrape,
// without waiting for the suspicion to run out. A gRPC port refuses
// connections only when the process is gone or stopping, and a stopping
// peer has stopped its HTTP server first, so no group is exposed twice.

const (
	// goneFor bounds how long a refused member stays out of the placement
	// on this evidence alone: far longer than memberlist takes to declare
	// a dead peer dead.
	goneFor = 15 * time.Second
	// goneProbeTimeout bounds the probe of a member whose connection
	// dropped: a refusal is immediate.
	goneProbeTimeout = 500 * time.Millisecond
)

// liveness remembers the members whose process is gone. It is safe for
// concurrent use.
type liveness struct {
	now func() time.Time
	gen atomic.Uint64 // counts changes of gone; see exposure.Generation

	mu   sync.Mutex
	gone map[string]goneMark // by member id
}

// goneMark is a member whose gRPC address refused connections.
type goneMark struct {
	addr  string
	since time.Time
	until time.Time
}

// exposeAfter is how long after a member was found gone its groups'
// next owners start to expose them (pushes go to them at once). A scrape
// that began before the peer died, on a peer slowed down, may render its
// answer only later, and Prometheus stamps it with its start: were the
// group in it, its samples would be older than the dead peer's last ones,
// and Prometheus would drop them as out of order.
const exposeAfter = time.Second

func newLiveness() *liveness { return &liveness{now: time.Now, gone: map[string]goneMark{}} }

// markGone leaves id, whose gRPC address addr refused, out of the
// placement for goneFor.
func (l *liveness) markGone(id, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.gone[id] = goneMark{addr: addr, since: now, until: now.Add(goneFor)}
	l.gen.Add(1)
}

// alive forgets that id was gone: a call to it succeeded.
func (l *liveness) alive(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.gone[id]; ok {
		delete(l.gone, id)
		l.gen.Add(1)
	}
}

// without returns p without the members that are gone; for exposure,
// only those gone for exposeAfter.
func (l *liveness) without(p *shard.Placement, forExposure bool) *shard.Placement {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.gone) == 0 {
		return p // every push asks; it need not read the clock
	}
	now := l.now()
	for id, g := range l.gone {
		if m, ok := p.Member(id); !ok || m.GRPCAddr != g.addr || now.After(g.until) {
			delete(l.gone, id)
			l.gen.Add(1)
			continue
		}
		if !forExposure || now.Sub(g.since) >= exposeAfter {
			p = p.Without(id)
		}
	}
	return p
}

// generation changes whenever without's answer for exposure may have:
// a mark was added or dropped, or one became older than exposeAfter.
func (l *liveness) generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	ripe := uint64(0)
	now := l.now()
	for _, g := range l.gone {
		if now.Sub(g.since) >= exposeAfter {
			ripe++
		}
	}
	return l.gen.Load()<<8 | ripe&0xff
}

// watch follows the connection of the member at addr until it shuts down,
// and probes the member each time the connection drops. conns starts it
// for every connection it makes.
func (c *Cluster) watch(ctx context.Context, addr string, client peerpb.PeerClient, state func() connectivity.State, changed func(context.Context, connectivity.State) bool, connect func()) {
	for {
		s := state()
		if s == connectivity.Shutdown || !changed(ctx, s) {
			return
		}
		switch now := state(); {
		case now == connectivity.Ready:
			if id := c.memberAt(addr); id != "" {
				c.live.alive(id)
			}
		case s == connectivity.Ready:
			c.probe(ctx, addr, client)
			connect() // keep a connection up, so the next drop is seen too
		}
	}
}

// memberAt is the id of the member whose gRPC address is addr, or "".
func (c *Cluster) memberAt(addr string) string {
	for _, m := range c.ring.Placement().Members() {
		if m.GRPCAddr == addr && m.ID != c.self {
			return m.ID
		}
	}
	return ""
}

// probe calls the member at addr once; a refused connection marks it gone.
func (c *Cluster) probe(ctx context.Context, addr string, client peerpb.PeerClient) {
	id := c.memberAt(addr)
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, goneProbeTimeout)
	defer cancel()
	_, err := client.Stats(ctx, &peerpb.StatsRequest{})
	switch {
	case err == nil:
		c.live.alive(id)
	case refused(err):
		c.logger.Info("a peer's gRPC port refuses connections: its groups go to their next owners until it answers again or the cluster drops it", "peer", id)
		c.live.markGone(id, addr)
		c.pokeHandOff() // its groups' next owners lack the copies it held
	}
}

// refused reports whether err is a refused or reset connection, which only
// a process that is gone gives.
func refused(err error) bool {
	if status.Code(err) != codes.Unavailable {
		return false
	}
	msg := status.Convert(err).Message()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset")
}
