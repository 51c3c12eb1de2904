package cluster

import (
	"fmt"
	"github.com/pushring/pushring/ingest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// groupToPB encodes a group for the peer protocol.
func groupToPB(gs store.GroupSnapshot) (*peerpb.Group, error) {
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

// wireToPB is a group the store encoded for the peer protocol.
func wireToPB(wg store.WireGroup) *peerpb.Group {
	g := &peerpb.Group{Key: []byte(wg.Key.String()), Version: wg.Version, Families: make([]*peerpb.Family, 0, len(wg.Families))}
	if !wg.Deadline.IsZero() {
		g.DeadlineUnixNanos = wg.Deadline.UnixNano()
	}
	for _, f := range wg.Families {
		pf := &peerpb.Family{Name: f.Name, MetricFamily: f.MetricFamily}
		if !f.Time.IsZero() {
			pf.TimeUnixNanos = f.Time.UnixNano()
		}
		g.Families = append(g.Families, pf)
	}
	return g
}

// groupFromPB decodes a group of the peer protocol.
func groupFromPB(g *peerpb.Group) (store.GroupSnapshot, error) {
	k, err := store.ParseGroupKey(string(g.GetKey()))
	if err != nil {
		return store.GroupSnapshot{}, err
	}
	gs := store.GroupSnapshot{Key: k, Version: g.GetVersion(), Families: make([]store.FamilySnapshot, 0, len(g.GetFamilies()))}
	if d := g.GetDeadlineUnixNanos(); d != 0 {
		gs.Deadline = time.Unix(0, d)
	}
	for _, f := range g.GetFamilies() {
		mf, err := ingest.DecodeFamily(f.GetMetricFamily())
		if err != nil {
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
