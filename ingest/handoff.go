package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// Values of the result labels of the hand-off self-metrics.
const (
	handOffSent     = "sent"
	handOffKept     = "kept"
	handOffRejected = "rejected"
	handOffFailed   = "failed"
	resultOK        = "ok"
	resultFailed    = "failed"
)

// Retry delays of hand-off after a pass that left groups behind, and the
// interval of the pass that runs anyway: a group can land on a peer that
// does not own it without a membership change here (a forwarded push or a
// hand-off from a peer whose view differed), and no pass must be missed
// for good.
const (
	handOffRetryMin = 250 * time.Millisecond
	handOffRetryMax = 30 * time.Second
	handOffSweep    = 10 * time.Second
)

// PokeHandOff asks for a hand-off pass soon: a group this peer may not own
// was stored here. It never blocks.
func (in *Ingester) PokeHandOff() {
	if in.handOffPoke == nil {
		return
	}
	select {
	case in.handOffPoke <- struct{}{}:
	default:
	}
}

// RunHandOff hands the groups this peer holds but no longer owns to their
// owners: once at start (a restart may have restored groups from the
// persistence file that moved meanwhile), after every change of the
// cluster view, and again with backoff while a pass leaves groups behind.
// It returns when ctx is done. The caller owns the goroutine.
func (in *Ingester) RunHandOff(ctx context.Context) error {
	if in.cluster == nil {
		<-ctx.Done()
		return nil
	}
	retry := time.NewTimer(0)
	defer retry.Stop()
	delay := handOffRetryMin
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-in.cluster.Changed():
			delay = handOffRetryMin
		case <-in.handOffPoke:
		case <-retry.C:
		}
		if in.leaving.Load() {
			return nil // Drain owns the groups now
		}
		retry.Stop()
		in.peers.Prune(in.cluster.View().Peers())
		left := in.handOffPass(ctx, in.view())
		if left > 0 && ctx.Err() == nil {
			retry.Reset(delay)
			delay = min(2*delay, handOffRetryMax)
		} else {
			retry.Reset(in.handOffSweep)
			delay = handOffRetryMin
		}
	}
}

// Drain is called when this peer leaves: from now on every push is routed
// as if it were gone, and its groups go to their new owners, in passes
// until none is left or --cluster.drain-timeout (or ctx) ends. It returns
// how many groups are left behind and an error saying so if any.
func (in *Ingester) Drain(ctx context.Context) (int, error) {
	if in.cluster == nil {
		return 0, nil
	}
	in.SetLeaving()
	ctx, cancel := context.WithTimeout(ctx, in.clusterCfg.DrainTimeout)
	defer cancel()
	delay := handOffRetryMin
	for {
		left := in.handOffPass(ctx, in.view())
		if left == 0 {
			return 0, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return left, fmt.Errorf("%d groups not handed to their new owners within --%s=%s", left, flagDrainTimeout, in.clusterCfg.DrainTimeout)
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// SetLeaving routes every push from now on as if this peer had left the
// cluster; Drain calls it too. The api's readiness and the peer service
// refuse hand-offs from then on.
func (in *Ingester) SetLeaving() { in.leaving.Store(true) }

// Leaving reports whether the peer is leaving.
func (in *Ingester) Leaving() bool { return in.leaving.Load() }

// handOffPass sends every group that view gives another owner to that
// owner, with the deletes this peer remembers of such groups, and returns
// how many groups are still here afterwards.
func (in *Ingester) handOffPass(ctx context.Context, view View) int {
	self := in.cluster.Self()
	work := map[Peer]*handOffWork{}
	at := func(o Peer) *handOffWork {
		w := work[o]
		if w == nil {
			w = &handOffWork{}
			work[o] = w
		}
		return w
	}
	for _, k := range in.handOff.Keys() {
		if o := view.Owner(k.Hash()); o.ID != self && o.ID != "" {
			w := at(o)
			w.keys = append(w.keys, k)
		}
	}
	for _, t := range in.handOff.Tombstones() {
		if o := view.Owner(t.Key.Hash()); o.ID != self && o.ID != "" {
			w := at(o)
			w.tombs = append(w.tombs, t)
		}
	}
	pending := 0
	for _, w := range work {
		pending += len(w.keys)
	}
	in.metrics.handOffPending.Set(float64(pending))
	if len(work) == 0 {
		return 0
	}
	owners := make([]Peer, 0, len(work))
	for o := range work {
		owners = append(owners, o)
	}
	slices.SortFunc(owners, func(a, b Peer) int { return cmp.Compare(a.ID, b.ID) })
	left := 0
	for _, o := range owners {
		left += in.handOffTo(ctx, o, work[o])
	}
	if pending > 0 {
		in.logger.Info("hand-off pass", "groups", pending, "left", left, "owners", len(owners))
	}
	in.metrics.handOffPending.Set(float64(left))
	return left
}

// handOffWork is what one pass sends to one owner.
type handOffWork struct {
	keys  []store.GroupKey
	tombs []store.Tombstone
}

// sentItem is what a batch entry was, to act on the owner's answer.
type sentItem struct {
	version uint64
	deleted bool
}

// handOffTo sends groups and tombstones to owner in batches, removes each
// group copy the owner took and forgets each tombstone it took. It returns
// how many of the groups are still here.
func (in *Ingester) handOffTo(ctx context.Context, owner Peer, w *handOffWork) int {
	client, err := in.peers.Client(owner.Addr)
	if err != nil {
		in.logger.Warn("hand-off: cannot reach the new owner", "peer", owner.ID, "err", err)
		in.metrics.handOffGroups.WithLabelValues(handOffFailed).Add(float64(len(w.keys)))
		return len(w.keys)
	}
	left := 0
	batch := &peerpb.HandOffRequest{OriginPeer: in.cluster.Self()}
	items := map[string]sentItem{}
	size := 0
	flush := func() {
		if len(batch.Groups) > 0 {
			left += in.sendBatch(ctx, client, owner, batch, items)
		}
		batch = &peerpb.HandOffRequest{OriginPeer: in.cluster.Self()}
		items = map[string]sentItem{}
		size = 0
	}
	add := func(g *peerpb.Group, it sentItem) {
		n := proto.Size(g)
		if size > 0 && size+n > handOffBatchBytes {
			flush()
		}
		batch.Groups = append(batch.Groups, g)
		items[string(g.Key)] = it
		size += n
	}
	for _, t := range w.tombs {
		add(&peerpb.Group{Key: []byte(t.Key.String()), Version: t.Version, Deleted: true}, sentItem{version: t.Version, deleted: true})
	}
	for _, k := range w.keys {
		if ctx.Err() != nil {
			left++
			continue
		}
		gs, ok := in.handOff.Group(k)
		if !ok {
			continue // deleted or expired meanwhile
		}
		g, err := GroupToPB(gs)
		if err != nil {
			in.logger.Error("hand-off: group does not encode", "group", gs.String(), "err", err)
			left++
			continue
		}
		if _, dup := items[string(g.Key)]; dup {
			flush() // a tombstone of the same key is in this batch: send it first
		}
		add(g, sentItem{version: gs.Version})
	}
	flush()
	return left
}

// sendBatch sends one batch and removes the copies the owner took. It
// returns how many groups (not tombstones) of the batch are still here.
func (in *Ingester) sendBatch(ctx context.Context, client peerpb.PeerClient, owner Peer, batch *peerpb.HandOffRequest, items map[string]sentItem) int {
	groups := 0
	for _, it := range items {
		if !it.deleted {
			groups++
		}
	}
	ctx, cancel := context.WithTimeout(ctx, in.clusterCfg.HandOffTimeout)
	defer cancel()
	resp, err := client.HandOff(ctx, batch)
	if err != nil {
		in.metrics.handOffBatches.WithLabelValues(resultFailed).Inc()
		in.metrics.handOffGroups.WithLabelValues(handOffFailed).Add(float64(groups))
		in.logger.Warn("hand-off batch failed; retrying", "peer", owner.ID, "groups", groups, "err", err)
		return groups
	}
	in.metrics.handOffBatches.WithLabelValues(resultOK).Inc()
	rejected := map[string]bool{}
	for _, r := range resp.GetRejected() {
		rejected[string(r.GetKey())] = true
		in.logger.Warn("hand-off: the new owner refused a group; it stays here", "peer", owner.ID,
			"reason", r.GetReason(), "err", r.GetMessage())
	}
	left := 0
	for _, g := range batch.Groups {
		kb := string(g.Key)
		it := items[kb]
		k, err := store.ParseGroupKey(kb)
		if err != nil {
			continue // we encoded it from a stored key
		}
		switch {
		case it.deleted && !rejected[kb]:
			in.handOff.ForgetTombstone(k, it.version)
		case it.deleted:
		case rejected[kb]:
			in.metrics.handOffGroups.WithLabelValues(handOffRejected).Inc()
			left++
		case in.handOff.DeleteVersion(k, it.version):
			in.metrics.handOffGroups.WithLabelValues(handOffSent).Inc()
		default:
			// A write came in since the copy; or the group went. If it is
			// still here, the next pass sends the new version.
			in.metrics.handOffGroups.WithLabelValues(handOffKept).Inc()
			if _, ok := in.handOff.Group(k); ok {
				left++
			}
		}
	}
	return left
}

// GroupToPB encodes a group for the peer protocol.
func GroupToPB(gs store.GroupSnapshot) (*peerpb.Group, error) {
	g := &peerpb.Group{Key: []byte(gs.Key.String()), Version: gs.Version, Families: make([]*peerpb.Family, 0, len(gs.Families))}
	if !gs.Deadline.IsZero() {
		g.DeadlineUnixNanos = gs.Deadline.UnixNano()
	}
	for _, f := range gs.Families {
		b, err := proto.Marshal(f.Family)
		if err != nil {
			return nil, fmt.Errorf("encode family %q: %w", f.Family.GetName(), err)
		}
		pf := &peerpb.Family{Name: f.Family.GetName(), MetricFamily: b}
		if !f.Time.IsZero() {
			pf.TimeUnixNanos = f.Time.UnixNano()
		}
		g.Families = append(g.Families, pf)
	}
	return g, nil
}

// GroupFromPB decodes a group of the peer protocol.
func GroupFromPB(g *peerpb.Group) (store.GroupSnapshot, error) {
	k, err := store.ParseGroupKey(string(g.GetKey()))
	if err != nil {
		return store.GroupSnapshot{}, err
	}
	gs := store.GroupSnapshot{Key: k, Version: g.GetVersion(), Families: make([]store.FamilySnapshot, 0, len(g.GetFamilies()))}
	if d := g.GetDeadlineUnixNanos(); d != 0 {
		gs.Deadline = time.Unix(0, d)
	}
	for _, f := range g.GetFamilies() {
		mf := &dto.MetricFamily{}
		if err := proto.Unmarshal(f.GetMetricFamily(), mf); err != nil {
			return store.GroupSnapshot{}, fmt.Errorf("decode family %q: %w", f.GetName(), err)
		}
		if mf.GetName() != f.GetName() {
			return store.GroupSnapshot{}, fmt.Errorf("family %q holds metric family %q", f.GetName(), mf.GetName())
		}
		var t time.Time
		if n := f.GetTimeUnixNanos(); n != 0 {
			t = time.Unix(0, n)
		}
		gs.Families = append(gs.Families, store.FamilySnapshot{Family: mf, Time: t})
	}
	return gs, nil
}

// ErrLeaving refuses a hand-off to a peer that is itself leaving: the
// sender retries once its view no longer lists this peer.
var ErrLeaving = errors.New("this peer is leaving the cluster")
