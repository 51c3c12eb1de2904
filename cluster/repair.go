package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// Repair keeps every owner of a group at its newest version without
// shipping every group (docs/design.md, "Repair"). For each other member,
// a peer takes the groups and tombstones both of them own in its view,
// hashes each (key hash, version, deleted) into one of repairBuckets
// buckets by the top bits of its key hash, and sends the XOR per bucket;
// the other peer answers with the buckets that differ and what it holds
// there, and the first sends the copies the other lacks or holds older.
// Each peer repairs toward every other, so differences in either
// direction close within a pass of each. The same pass restores the
// replication factor after a member died (its groups' next owners lack
// them), and takes a joining peer's copies to it.
//
// A peer that returns takes the newest state before it serves (join):
// it pulls from every peer what it will own, and only then tells the
// cluster it serves, so no peer places or exposes a group on it before.

// repairBuckets is how many buckets of key hashes repair compares: 256
// digests are 2 KiB per call, and a difference in one group costs sending
// the entries of 1/256 of the groups two peers share.
const repairBuckets = 256

// maxRepairBuckets bounds what a caller may ask a peer to compare.
const maxRepairBuckets = 1 << 16

// Reasons repair copies a group.
const (
	repairMissing = "missing"
	repairOlder   = "older"
)

// join waits until the joins at start are over, takes the newest state of
// the groups this peer will own from every other member, and then serves.
// It reports whether ctx is still live.
func (c *Cluster) join(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-c.members.Joined():
	}
	if c.members.Serving() {
		return true
	}
	c.pullAll(ctx)
	if err := c.members.Serve(); err != nil {
		c.logger.Warn("could not tell the cluster this peer serves; it will when gossip next runs", "err", err)
	}
	return ctx.Err() == nil
}

// pullAll pulls from every other member, at once, each within
// --cluster.join-timeout (at least --cluster.handoff-timeout): a stream of
// many batches. A member that does not answer is logged; repair brings
// what it holds later.
func (c *Cluster) pullAll(ctx context.Context) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for _, p := range c.members.Peers() {
		if p.Self {
			continue
		}
		wg.Go(func() {
			n, err := c.pullFrom(ctx, p.Member)
			mu.Lock()
			total += n
			mu.Unlock()
			if err != nil {
				c.logger.Warn("joining: could not take the groups another peer holds; repair brings them later", "peer", p.ID, "err", err)
			}
		})
	}
	wg.Wait()
	if total > 0 {
		c.logger.Info("joining: took the newest state of the groups this peer owns", "groups", total)
	}
}

// pullFrom streams from p what this peer will own and stores it, keeping
// the newer of each copy. It returns how many groups and tombstones it
// stored.
func (c *Cluster) pullFrom(ctx context.Context, p shard.Member) (int, error) {
	client, err := c.conns.client(p.GRPCAddr)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.Membership.JoinTimeout, c.cfg.HandOffTimeout))
	defer cancel()
	stream, err := client.Pull(ctx, &peerpb.PullRequest{Peer: c.self, ReplicationFactor: uint32(c.cfg.ReplicationFactor)})
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		b, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		for _, g := range b.GetGroups() {
			if _, err := c.receive(g); err != nil {
				c.logger.Warn("joining: a pulled group was refused", "peer", p.ID, "err", err)
				continue
			}
			n++
			c.metrics.pulledGroups.Inc()
		}
	}
}

// Pull streams the groups and tombstones the caller will own once it
// serves, in batches.
func (s *server) Pull(req *peerpb.PullRequest, stream peerpb.Peer_PullServer) error {
	c := s.c
	rf := int(req.GetReplicationFactor())
	if req.GetPeer() == "" || rf < 1 || rf > maxReplicationFactor {
		return status.Error(codes.InvalidArgument, "a pull names its peer and a replication factor between 1 and 5")
	}
	view := c.placement().With(shard.Member{ID: req.GetPeer()})
	b := newCopyBatcher(c.self, stream.Send)
	for _, e := range c.st.Entries() {
		if !ownedBy(view, e.Key.Hash(), rf, req.GetPeer()) {
			continue
		}
		if g, ok := c.stateOf(e.Key); ok {
			if err := b.add(g); err != nil {
				return err
			}
		}
	}
	return b.flush()
}

// copyBatcher fills batches of copies of at most handOffBatchBytes (a
// single larger group goes alone) and hands each to send.
type copyBatcher struct {
	self string
	send func(*peerpb.HandOffRequest) error
	req  *peerpb.HandOffRequest
	size int
}

func newCopyBatcher(self string, send func(*peerpb.HandOffRequest) error) *copyBatcher {
	return &copyBatcher{self: self, send: send, req: &peerpb.HandOffRequest{OriginPeer: self, Replica: true}}
}

// add puts g in the batch, sending the batch first if g would overfill it.
func (b *copyBatcher) add(g *peerpb.Group) error {
	n := proto.Size(g)
	if b.size > 0 && b.size+n > handOffBatchBytes {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.req.Groups = append(b.req.Groups, g)
	b.size += n
	return nil
}

// flush sends the batch if it holds anything and starts a new one.
func (b *copyBatcher) flush() error {
	if len(b.req.Groups) == 0 {
		return nil
	}
	req := b.req
	b.req, b.size = &peerpb.HandOffRequest{OriginPeer: b.self, Replica: true}, 0
	return b.send(req)
}

// ownedBy reports whether id is one of the first rf owners of hash h in
// view.
func ownedBy(view *shard.Placement, h uint64, rf int, id string) bool {
	for _, o := range view.Owners(h, rf) {
		if o.ID == id {
			return true
		}
	}
	return false
}

// shared lists the entries both this peer and peer own in view.
func (c *Cluster) shared(view *shard.Placement, entries []store.Entry, peer string) []store.Entry {
	var out []store.Entry
	for _, e := range entries {
		owners := view.Owners(e.Key.Hash(), c.cfg.ReplicationFactor)
		self, other := false, false
		for _, o := range owners {
			self = self || o.ID == c.self
			other = other || o.ID == peer
		}
		if self && other {
			out = append(out, e)
		}
	}
	return out
}

// bucketOf is the bucket of key hash h among n (a power of two).
func bucketOf(h uint64, n int) int {
	if n <= 1 {
		return 0
	}
	return int(h >> (64 - bits.TrailingZeros(uint(n))))
}

// entryHash is what an entry adds to its bucket's digest.
func entryHash(e store.Entry) uint64 {
	var b [17]byte
	binary.LittleEndian.PutUint64(b[:8], e.Key.Hash())
	binary.LittleEndian.PutUint64(b[8:16], e.Version)
	if e.Deleted {
		b[16] = 1
	}
	return xxhash.Sum64(b[:])
}

// digests are the bucket digests of entries.
func digests(entries []store.Entry, n int) []uint64 {
	d := make([]uint64, n)
	for _, e := range entries {
		d[bucketOf(e.Key.Hash(), n)] ^= entryHash(e)
	}
	return d
}

// Digest compares the caller's digests with this peer's over the groups
// both own in this peer's view, and lists what this peer holds in the
// buckets that differ.
func (s *server) Digest(_ context.Context, req *peerpb.DigestRequest) (*peerpb.DigestResponse, error) {
	c := s.c
	n := len(req.GetBuckets())
	if n == 0 || n > maxRepairBuckets || n&(n-1) != 0 {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("a digest has a power of two buckets, at most %d; got %d", maxRepairBuckets, n))
	}
	mine := c.shared(c.placement(), c.st.Entries(), req.GetOriginPeer())
	d := digests(mine, n)
	resp := &peerpb.DigestResponse{}
	differ := make([]bool, n)
	for i, v := range d {
		if v != req.GetBuckets()[i] {
			differ[i] = true
			resp.Differing = append(resp.Differing, uint32(i))
		}
	}
	for _, e := range mine {
		if differ[bucketOf(e.Key.Hash(), n)] {
			resp.Entries = append(resp.Entries, &peerpb.Entry{Key: []byte(e.Key.String()), Version: e.Version, Deleted: e.Deleted})
		}
	}
	return resp, nil
}

// repairPass compares this peer's groups with every other member's, by
// digest, and sends each the copies it lacks or holds older. It sets the
// under-replicated gauge to what it found and could not copy.
func (c *Cluster) repairPass(ctx context.Context, view *shard.Placement) {
	if c.cfg.ReplicationFactor < 2 || alone(view, c.self) {
		return
	}
	entries := c.st.Entries()
	under, failed := 0, false
	for _, m := range view.Members() {
		if m.ID == c.self {
			continue
		}
		n, err := c.repairWith(ctx, m, c.shared(view, entries, m.ID))
		under += n
		if err != nil {
			failed = true
			c.logger.Debug("repair: a peer did not answer", "peer", m.ID, "err", err)
		}
	}
	c.metrics.underReplicated.Set(float64(under))
	result := resultOK
	if failed {
		result = resultFailed
	}
	c.metrics.repairPasses.WithLabelValues(result).Inc()
}

// repairWith repairs the groups this peer and m share, mine, and returns
// how many m still lacks or holds older.
func (c *Cluster) repairWith(ctx context.Context, m shard.Member, mine []store.Entry) (int, error) {
	if c.breakers.open(m.ID) {
		return 0, fmt.Errorf("peer %q is passed over", m.ID)
	}
	client, err := c.conns.client(m.GRPCAddr)
	if err != nil {
		return 0, err
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.HandOffTimeout)
	resp, err := client.Digest(dctx, &peerpb.DigestRequest{OriginPeer: c.self, Buckets: digests(mine, repairBuckets)})
	cancel()
	if err != nil {
		return 0, err
	}
	if len(resp.GetDiffering()) == 0 {
		return 0, nil
	}
	differ := make([]bool, repairBuckets)
	for _, i := range resp.GetDiffering() {
		if int(i) < repairBuckets {
			differ[i] = true
		}
	}
	theirs := make(map[string]uint64, len(resp.GetEntries()))
	for _, e := range resp.GetEntries() {
		theirs[string(e.GetKey())] = e.GetVersion()
	}
	var missing, older []store.GroupKey
	for _, e := range mine {
		if !differ[bucketOf(e.Key.Hash(), repairBuckets)] {
			continue
		}
		switch v, ok := theirs[e.Key.String()]; {
		case !ok:
			missing = append(missing, e.Key)
		case v < e.Version:
			older = append(older, e.Key)
		}
	}
	left := c.sendCopies(ctx, m, missing, repairMissing) + c.sendCopies(ctx, m, older, repairOlder)
	return left, nil
}

// sendCopies sends the current state of keys to m as copies, in batches,
// and returns how many did not land.
func (c *Cluster) sendCopies(ctx context.Context, m shard.Member, keys []store.GroupKey, reason string) int {
	left := 0
	b := newCopyBatcher(c.self, func(req *peerpb.HandOffRequest) error {
		bctx, cancel := context.WithTimeout(ctx, c.cfg.HandOffTimeout)
		defer cancel()
		result := c.copyTo(bctx, m, req)
		c.metrics.repairGroups.WithLabelValues(reason, result).Add(float64(len(req.Groups)))
		if result != resultOK {
			left += len(req.Groups)
		}
		return nil // counted; the next batch is tried all the same
	})
	for _, k := range keys {
		if g, ok := c.stateOf(k); ok {
			_ = b.add(g) // send never fails
		}
	}
	_ = b.flush()
	return left
}
