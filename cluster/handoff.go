package cluster

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// Hand-off moves a group from a peer that holds it to the peer that owns
// it (docs/design.md, "Hand-off"): after a membership change, when a
// forwarded push or a hand-off stored a group here that this peer does not
// own, and when the peer leaves. The new owner keeps the newer version;
// the sender removes its copy only if nothing wrote it meanwhile.

// Retry delays of hand-off after a pass that left groups behind, and the
// interval of the pass that runs anyway: a group can land on a peer that
// does not own it without a membership change here (a forwarded push or a
// hand-off from a peer whose view differed), and no pass must be missed
// for good.
const (
	handOffRetryMin = 250 * time.Millisecond
	handOffRetryMax = 30 * time.Second
	drainRetryMax   = 2 * time.Second
	handOffSweep    = 10 * time.Second
	// handOffBatchBytes bounds the groups of one hand-off message, far
	// below peerpb.MaxMessageBytes; a single larger group goes alone.
	handOffBatchBytes = 4 << 20
)

// pokeHandOff asks for a hand-off pass soon: a group this peer may not
// own was stored here. It never blocks.
func (c *Cluster) pokeHandOff() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// runHandOff hands the groups this peer holds but no longer owns to their
// owners: once at start (a restart may have restored groups from the
// persistence file that moved meanwhile), after every change of the
// placement, when poked, every sweep interval, and again with backoff
// while a pass leaves groups behind. It returns when ctx ends or the peer
// leaves (drain owns the groups then).
func (c *Cluster) runHandOff(ctx context.Context) {
	retry := time.NewTimer(0)
	defer retry.Stop()
	delay := handOffRetryMin
	var prev map[string]bool // the members of the last pass
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.ring.Changed():
			delay = handOffRetryMin
		case <-c.poke:
		case <-retry.C:
		}
		if c.leaving.Load() {
			return
		}
		retry.Stop()
		view := c.placement()
		c.conns.prune(view.Members())
		ids := memberIDs(view)
		c.breakers.forget(ids)
		for id := range ids {
			if prev != nil && !prev[id] {
				c.breakers.reset(id) // back in the view: repair reaches it at once
			}
		}
		prev = ids
		out := c.handOffPass(ctx, view)
		c.repairPass(ctx, view)
		if out.left > 0 && ctx.Err() == nil {
			c.logger.Warn("hand-off left groups on this peer; retrying", "left", out.left, "retry_in", delay, "first_failure", out.firstErr)
			retry.Reset(delay)
			delay = min(2*delay, handOffRetryMax)
		} else {
			retry.Reset(c.sweep)
			delay = handOffRetryMin
		}
	}
}

// drain hands this peer's groups to their owners once it has gone, in
// passes until none is left or the deadline. A peer that refuses a batch
// (it is leaving too) or does not answer is left out of the placement for
// the rest of the drain, so its groups go to the next peer of their
// ranking: when every peer stops at once, each finds quickly that nobody
// is left to take its groups instead of retrying until the deadline. It
// returns how many groups it handed over and how many are still here.
func (c *Cluster) drain(deadline time.Time) (handed, left int) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	view := c.placement()
	delay := handOffRetryMin
	for {
		out := c.handOffPass(ctx, view)
		handed += out.handed
		if out.left == out.ownerless || ctx.Err() != nil {
			return handed, out.left // done, or nobody is left to take the rest
		}
		for _, id := range out.failed {
			view = view.Without(id)
		}
		if len(out.failed) > 0 {
			continue // the groups have other owners now: try them at once
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return handed, out.left
		case <-t.C:
		}
		delay = min(2*delay, drainRetryMax)
	}
}

// reportLeftBehind logs, once, how the peer's groups fared when it
// stopped, in terms true for its configuration, and counts the groups it
// drops.
// A peer that was on its own says so at Info: nobody could have taken its
// groups.
func (c *Cluster) reportLeftBehind(handed, left int, alone bool) {
	level := slog.LevelWarn
	if alone {
		level = slog.LevelInfo
	}
	switch {
	case left == 0 && handed > 0:
		c.logger.Info("handed every group over", "handed", handed)
	case left == 0:
	case c.cfg.PersistenceFile != "":
		c.logger.Log(context.Background(), level, "groups no other peer took stay in this peer's persistence file and return with it",
			"left", left, "handed", handed, "file", c.cfg.PersistenceFile)
	default:
		c.metrics.handOffGroups.WithLabelValues(handOffDropped).Add(float64(left))
		c.logger.Log(context.Background(), level, "groups no other peer took are dropped: no --"+flagPersistFile+" is set",
			"dropped", left, "handed", handed)
	}
}

// passOutcome is what one hand-off pass did.
type passOutcome struct {
	handed    int      // groups the new owners took
	left      int      // groups still here that another peer owns, or no peer does
	ownerless int      // of left, the groups no peer owns
	failed    []string // peers whose batch did not get through
	firstErr  error    // the first failure, for the log
}

// handOffPass sends every group that view gives another owner to that
// owner, with the deletes this peer remembers of such groups. A group
// that view gives no owner (this peer is leaving and nobody is left)
// stays, and counts as left.
func (c *Cluster) handOffPass(ctx context.Context, view *shard.Placement) passOutcome {
	if alone(view, c.self) {
		return passOutcome{} // this peer owns everything: nothing to look at
	}
	work, ownerless := c.sortByOwner(view)
	pending := ownerless
	for _, w := range work {
		pending += len(w.keys)
	}
	c.metrics.handOffPending.Set(float64(pending))
	out := passOutcome{left: ownerless, ownerless: ownerless}
	for _, w := range work {
		handed, left, err := c.handOffTo(ctx, w)
		out.handed += handed
		out.left += left
		if err != nil {
			out.failed = append(out.failed, w.owner.ID)
			if out.firstErr == nil {
				out.firstErr = err
			}
		}
	}
	if pending > 0 {
		c.logger.Debug("hand-off pass", "groups", pending, "handed", out.handed, "left", out.left, "owners", len(work))
	}
	c.metrics.handOffPending.Set(float64(out.left))
	return out
}

// memberIDs is the set of view's member ids.
func memberIDs(view *shard.Placement) map[string]bool {
	ids := map[string]bool{}
	for _, m := range view.Members() {
		ids[m.ID] = true
	}
	return ids
}

// alone reports whether view holds this peer only.
func alone(view *shard.Placement, self string) bool {
	if view.Len() != 1 {
		return false
	}
	_, ok := view.Member(self)
	return ok
}

// handOffWork is what one pass sends to one owner.
type handOffWork struct {
	owner shard.Member
	keys  []store.GroupKey
	tombs []store.Tombstone
}

// sortByOwner lists, per owner other than this peer, the groups and
// tombstones to send it, in owner order, and counts the groups no peer
// owns.
func (c *Cluster) sortByOwner(view *shard.Placement) (work []*handOffWork, ownerless int) {
	byOwner := map[string]*handOffWork{}
	at := func(o shard.Member) *handOffWork {
		w := byOwner[o.ID]
		if w == nil {
			w = &handOffWork{owner: o}
			byOwner[o.ID] = w
		}
		return w
	}
	for _, k := range c.st.Keys() {
		if c.isOwner(view, k.Hash()) {
			continue // a copy this peer keeps; repair keeps the owners level
		}
		switch o := view.Owner(k.Hash()); o.ID {
		case "":
			ownerless++
		default:
			w := at(o)
			w.keys = append(w.keys, k)
		}
	}
	for _, t := range c.st.Tombstones() {
		if o := view.Owner(t.Key.Hash()); !c.isOwner(view, t.Key.Hash()) && o.ID != "" {
			w := at(o)
			w.tombs = append(w.tombs, t)
		}
	}
	for _, w := range byOwner {
		work = append(work, w)
	}
	slices.SortFunc(work, func(a, b *handOffWork) int { return cmp.Compare(a.owner.ID, b.owner.ID) })
	return work, ownerless
}

// sentItem is what a batch entry was, to act on the owner's answer.
type sentItem struct {
	version uint64
	deleted bool
}

// handOffTo sends groups and tombstones to their owner in batches,
// removes each group copy the owner took and forgets each tombstone it
// took. It returns how many groups it handed over, how many are still
// here, and the first error of a batch that did not get through.
func (c *Cluster) handOffTo(ctx context.Context, w *handOffWork) (handed, left int, err error) {
	client, err := c.conns.client(w.owner.GRPCAddr)
	if err != nil {
		c.metrics.handOffGroups.WithLabelValues(handOffFailed).Add(float64(len(w.keys)))
		return 0, len(w.keys), err
	}
	b := newBatch(c.self)
	flush := func() {
		if len(b.req.Groups) > 0 {
			h, l, e := c.sendBatch(ctx, client, w.owner, b)
			handed, left = handed+h, left+l
			if err == nil {
				err = e
			}
		}
		b = newBatch(c.self)
	}
	add := func(g *peerpb.Group, it sentItem) {
		n := proto.Size(g)
		if b.size > 0 && b.size+n > handOffBatchBytes {
			flush()
		}
		b.req.Groups = append(b.req.Groups, g)
		b.items[string(g.Key)] = it
		b.size += n
	}
	for _, t := range w.tombs {
		add(&peerpb.Group{Key: []byte(t.Key.String()), Version: t.Version, Deleted: true}, sentItem{version: t.Version, deleted: true})
	}
	for _, k := range w.keys {
		if ctx.Err() != nil {
			left++
			continue
		}
		wg, ok := c.st.GroupWire(k)
		if !ok {
			continue // deleted or expired meanwhile
		}
		g := wireToPB(wg)
		if _, dup := b.items[string(g.Key)]; dup {
			flush() // a tombstone of the same key is in this batch: send it first
		}
		add(g, sentItem{version: wg.Version})
	}
	flush()
	return handed, left, err
}

// batch is one hand-off message being filled.
type batch struct {
	req   *peerpb.HandOffRequest
	items map[string]sentItem
	size  int
}

func newBatch(self string) *batch {
	return &batch{req: &peerpb.HandOffRequest{OriginPeer: self}, items: map[string]sentItem{}}
}

// sendBatch sends one batch to owner and removes the copies it took. It
// returns how many groups (not tombstones) of the batch the owner took
// and how many are still here, and the error if the batch did not get
// through.
func (c *Cluster) sendBatch(ctx context.Context, client peerpb.PeerClient, owner shard.Member, b *batch) (handed, left int, err error) {
	groups := 0
	for _, it := range b.items {
		if !it.deleted {
			groups++
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandOffTimeout)
	defer cancel()
	resp, err := client.HandOff(ctx, b.req)
	if err != nil {
		c.metrics.handOffBatches.WithLabelValues(resultFailed).Inc()
		c.metrics.handOffGroups.WithLabelValues(handOffFailed).Add(float64(groups))
		c.logger.Debug("hand-off batch failed", "peer", owner.ID, "groups", groups, "err", err)
		return 0, groups, err
	}
	c.metrics.handOffBatches.WithLabelValues(resultOK).Inc()
	rejected := map[string]bool{}
	for _, r := range resp.GetRejected() {
		rejected[string(r.GetKey())] = true
		c.logger.Debug("hand-off: the new owner refused a group; it stays here", "peer", owner.ID,
			"reason", r.GetReason(), "err", r.GetMessage())
	}
	for _, g := range b.req.Groups {
		kb := string(g.Key)
		k, perr := store.ParseGroupKey(kb)
		if perr != nil {
			continue // we encoded it from a stored key
		}
		switch it := b.items[kb]; {
		case it.deleted && !rejected[kb]:
			c.st.ForgetTombstone(k, it.version)
		case it.deleted:
		case rejected[kb]:
			c.metrics.handOffGroups.WithLabelValues(handOffRejected).Inc()
			left++
		case c.st.DeleteVersion(k, it.version):
			c.metrics.handOffGroups.WithLabelValues(handOffSent).Inc()
			handed++
		default:
			// A write came in since the copy; or the group went. If it is
			// still here, the next pass sends the new version.
			c.metrics.handOffGroups.WithLabelValues(handOffKept).Inc()
			if _, ok := c.st.Group(k); ok {
				left++
			}
		}
	}
	return handed, left, nil
}
