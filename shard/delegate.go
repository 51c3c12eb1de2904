package shard

import (
	"sync/atomic"
)

// metaDelegate is the memberlist.Delegate of a peer. It only serves the
// peer's NodeMeta: pushring sends no user messages and no state over
// gossip (group data moves over gRPC).
//
// memberlist calls its methods from its own goroutines, concurrently; each
// returns at once without locking.
type metaDelegate struct {
	meta atomic.Pointer[[]byte] // encoded NodeMeta
}

// set replaces the metadata memberlist sends from the next alive message on.
func (d *metaDelegate) set(b []byte) { d.meta.Store(&b) }

// NodeMeta returns the encoded NodeMeta. Encode already checked it against
// memberlist.MetaMaxSize, the only limit memberlist passes.
func (d *metaDelegate) NodeMeta(limit int) []byte {
	b := d.meta.Load()
	if b == nil || len(*b) > limit {
		return nil
	}
	return *b
}

// NotifyMsg ignores user messages; pushring sends none.
func (d *metaDelegate) NotifyMsg([]byte) {}

// GetBroadcasts has nothing to broadcast.
func (d *metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState adds nothing to push/pull exchanges.
func (d *metaDelegate) LocalState(bool) []byte { return nil }

// MergeRemoteState ignores the (empty) remote state.
func (d *metaDelegate) MergeRemoteState([]byte, bool) {}
