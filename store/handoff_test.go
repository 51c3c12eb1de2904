package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// manualClock is a Clock whose time moves only when a test says so.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *manualClock) NewTimer(time.Duration) store.Timer { panic("not used") }

// newPeerStore returns a store as a cluster peer runs it: with tombstones
// and a clock the test moves.
func newPeerStore(t *testing.T, clock *manualClock, maxGroups int) *store.Store {
	t.Helper()
	s, err := store.New(store.Config{Clock: clock, TombstoneTTL: time.Minute, MaxGroups: maxGroups}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return s
}

func TestVersionsFollowTheClock(t *testing.T) {
	clock := &manualClock{now: t1}
	s := newPeerStore(t, clock, 0)
	k := key("job", "a")
	apply(t, s, textPush(t, k, true, t1, "# TYPE m gauge\nm 1\n"))
	require.Equal(t, uint64(t1.UnixNano()), group(t, s, k).Version)
	apply(t, s, textPush(t, k, true, t1, "# TYPE m gauge\nm 2\n"))
	require.Equal(t, uint64(t1.UnixNano())+1, group(t, s, k).Version, "a second write in the same nanosecond is still newer")
	clock.advance(-time.Hour) // the clock steps back: versions never do
	apply(t, s, textPush(t, k, true, t1, "# TYPE m gauge\nm 3\n"))
	require.Equal(t, uint64(t1.UnixNano())+2, group(t, s, k).Version)
}

// TestHandOff moves a group from an old owner to a new one as the cluster
// does: copy, receive, delete the copy if unchanged.
func TestHandOff(t *testing.T) {
	clock := &manualClock{now: t1}
	old, nu := newPeerStore(t, clock, 0), newPeerStore(t, clock, 0)
	k := key("job", "a", "instance", "x")
	apply(t, old, textPush(t, k, true, t1, "# TYPE m gauge\nm 1\n"))
	gs := group(t, old, k)

	ok, err := nu.Receive(gs)
	require.NoError(t, err)
	require.True(t, ok)
	got := group(t, nu, k)
	require.Equal(t, gs.Version, got.Version)
	require.Equal(t, gs.Deadline, got.Deadline)
	require.Equal(t, familyNames(gs), familyNames(got))
	for i := range gs.Families {
		require.Equal(t, gs.Families[i].Time, got.Families[i].Time)
	}
	require.Equal(t, string(scrape(t, old, store.FormatText)), string(scrape(t, nu, store.FormatText)),
		"families, times, version and deadline arrive as they were")
	ok, err = nu.Receive(gs)
	require.NoError(t, err)
	require.False(t, ok, "the same version again is stale")

	require.ElementsMatch(t, []store.GroupKey{k}, old.Keys())
	require.True(t, old.DeleteVersion(k, gs.Version))
	require.Empty(t, old.Keys())
	require.False(t, old.DeleteVersion(k, gs.Version), "gone already")
	checkInvariants(t, old)
	checkInvariants(t, nu)
}

// TestReceiveKeepsTheNewerWrite: a push that reached the new owner before
// the hand-off wins, and the old copy is not deleted at the sender if it
// changed meanwhile.
func TestReceiveKeepsTheNewerWrite(t *testing.T) {
	clock := &manualClock{now: t1}
	old, nu := newPeerStore(t, clock, 0), newPeerStore(t, clock, 0)
	k := key("job", "a")
	apply(t, old, textPush(t, k, true, t1, "# TYPE m gauge\nm 1\n"))
	stale := group(t, old, k)
	clock.advance(time.Second)
	apply(t, nu, textPush(t, k, true, t2, "# TYPE m gauge\nm 2\n"))

	ok, err := nu.Receive(stale)
	require.NoError(t, err)
	require.False(t, ok)
	require.InDelta(t, 2, gaugeValue(t, group(t, nu, k), "m"), 0)

	clock.advance(time.Second)
	apply(t, old, textPush(t, k, true, t3, "# TYPE m gauge\nm 3\n"))
	require.False(t, old.DeleteVersion(k, stale.Version), "a write after the copy keeps the group at the sender")
	require.Len(t, old.Keys(), 1)
}

// TestDeleteIsNotResurrected: a DELETE that reached the new owner first
// leaves a tombstone, so the old owner's copy does not bring the group back
// — until the tombstone is older than Config.TombstoneTTL.
func TestDeleteIsNotResurrected(t *testing.T) {
	clock := &manualClock{now: t1}
	old, nu := newPeerStore(t, clock, 0), newPeerStore(t, clock, 0)
	k := key("job", "a")
	apply(t, old, textPush(t, k, true, t1, "# TYPE m gauge\nm 1\n"))
	gs := group(t, old, k)
	clock.advance(time.Millisecond)
	require.False(t, nu.Delete(k), "the group is not here yet")

	ok, err := nu.Receive(gs)
	require.NoError(t, err)
	require.False(t, ok, "the delete is newer than the copy")
	require.Empty(t, nu.Keys())

	clock.advance(time.Minute)
	ok, err = nu.Receive(gs)
	require.NoError(t, err)
	require.True(t, ok, "a tombstone older than its TTL is forgotten")
}

func TestReceiveDelete(t *testing.T) {
	clock := &manualClock{now: t1}
	s := newPeerStore(t, clock, 0)
	k := key("job", "a")
	apply(t, s, textPush(t, k, true, t1, "# TYPE m gauge\nm 1\n"))
	v := group(t, s, k).Version
	require.False(t, s.ReceiveDelete(k, v-1), "an older delete leaves a newer group")
	require.True(t, s.ReceiveDelete(k, v+1))
	ok, err := s.Receive(store.GroupSnapshot{Key: k, Version: v})
	require.NoError(t, err)
	require.False(t, ok)
	checkInvariants(t, s)
}

// TestTombstonesBounded: the tombstones of a flood of deletes stay within
// the group limit; the oldest go first.
func TestTombstonesBounded(t *testing.T) {
	clock := &manualClock{now: t1}
	s := newPeerStore(t, clock, 10)
	for i := range 1000 {
		s.Delete(key("job", "a", "i", string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	require.LessOrEqual(t, store.TombstoneCount(s), 10)
	require.Positive(t, store.TombstoneCount(s))
}

func TestReceiveChecksLikeRestore(t *testing.T) {
	clock := &manualClock{now: t1}
	s := newPeerStore(t, clock, 1)
	apply(t, s, textPush(t, key("job", "a"), true, t1, "# TYPE m gauge\nm 1\n"))
	src := newPeerStore(t, clock, 0)
	apply(t, src, textPush(t, key("job", "b"), true, t1, "# TYPE m counter\nm 1\n"))
	apply(t, src, textPush(t, key("job", "c"), true, t1, "# TYPE n gauge\nn 1\n"))

	_, err := s.Receive(group(t, src, key("job", "c")))
	require.ErrorIs(t, err, store.ErrLimit)

	s2 := newPeerStore(t, clock, 0)
	apply(t, s2, textPush(t, key("job", "a"), true, t1, "# TYPE m gauge\nm 1\n"))
	_, err = s2.Receive(group(t, src, key("job", "b")))
	require.ErrorIs(t, err, store.ErrInconsistent)

	expired := group(t, src, key("job", "c"))
	expired.Deadline = t1
	ok, err := s2.Receive(expired)
	require.NoError(t, err)
	require.False(t, ok, "a group past its deadline is not stored")
	checkInvariants(t, s)
	checkInvariants(t, s2)
}

// TestReceiveMergesAnOlderCopy: a POST that reached the new owner before
// the hand-off must not make the families stored at the old owner vanish.
func TestReceiveMergesAnOlderCopy(t *testing.T) {
	clock := &manualClock{now: t1}
	old, nu := newPeerStore(t, clock, 0), newPeerStore(t, clock, 0)
	k := key("job", "batch")
	apply(t, old, textPush(t, k, true, t1, "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n"))
	copyOld := group(t, old, k)
	clock.advance(time.Second)
	apply(t, nu, textPush(t, k, false, t2, "# TYPE b gauge\nb 2\n# TYPE c gauge\nc 2\n")) // POST

	changed, err := nu.Receive(copyOld)
	require.NoError(t, err)
	require.True(t, changed)
	g := group(t, nu, k)
	require.Equal(t, []string{"a", "b", "c", store.PushFailureTimeName, store.PushTimeName}, familyNames(g))
	require.InDelta(t, 1, gaugeValue(t, g, "a"), 0, "only the old copy had a")
	require.InDelta(t, 2, gaugeValue(t, g, "b"), 0, "the newer POST's b wins")
	require.InDelta(t, float64(t2.Unix()), gaugeValue(t, g, store.PushTimeName), 1, "the later push time")
	require.Greater(t, g.Version, copyOld.Version)
	checkInvariants(t, nu)

	// A second delivery adds nothing.
	changed, err = nu.Receive(copyOld)
	require.NoError(t, err)
	require.False(t, changed)
}

// TestReceiveAfterAPutOrDelete: a PUT or a delete newer than the copy
// supersedes all of it.
func TestReceiveAfterAPutOrDelete(t *testing.T) {
	clock := &manualClock{now: t1}
	old, nu := newPeerStore(t, clock, 0), newPeerStore(t, clock, 0)
	k := key("job", "batch")
	apply(t, old, textPush(t, k, true, t1, "# TYPE a gauge\na 1\n"))
	copyOld := group(t, old, k)
	clock.advance(time.Second)
	apply(t, nu, textPush(t, k, true, t2, "# TYPE c gauge\nc 2\n")) // PUT
	changed, err := nu.Receive(copyOld)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, []string{"c", store.PushFailureTimeName, store.PushTimeName}, familyNames(group(t, nu, k)))

	nu.Delete(k)
	clock.advance(time.Second)
	apply(t, nu, textPush(t, k, false, t3, "# TYPE d gauge\nd 3\n")) // POST after the delete
	changed, err = nu.Receive(copyOld)
	require.NoError(t, err)
	require.False(t, changed, "the delete came after the copy")
	require.Equal(t, []string{"d", store.PushFailureTimeName, store.PushTimeName}, familyNames(group(t, nu, k)))
}

// TestReceiveAfterARejectedPush: a rejected push at the new owner creates
// the group with only a failure time; the old copy fills it in.
func TestReceiveAfterARejectedPush(t *testing.T) {
	clock := &manualClock{now: t1}
	old, nu := newPeerStore(t, clock, 0), newPeerStore(t, clock, 0)
	k := key("job", "batch")
	apply(t, old, textPush(t, k, true, t1, "# TYPE a gauge\na 1\n"))
	copyOld := group(t, old, k)
	clock.advance(time.Second)
	require.Error(t, nu.Apply(textPush(t, k, false, t2, "a 1 1700000000000\n")), "a timestamp: rejected, failure time recorded")

	changed, err := nu.Receive(copyOld)
	require.NoError(t, err)
	require.True(t, changed)
	g := group(t, nu, k)
	require.InDelta(t, 1, gaugeValue(t, g, "a"), 0)
	require.InDelta(t, float64(t1.UnixNano())/1e9, gaugeValue(t, g, store.PushTimeName), 1e-3, "the old copy's successful push")
	require.InDelta(t, float64(t2.UnixNano())/1e9, gaugeValue(t, g, store.PushFailureTimeName), 1e-3, "the new owner's failure")
}

func TestTombstonesListAndForget(t *testing.T) {
	clock := &manualClock{now: t1}
	s := newPeerStore(t, clock, 0)
	k := key("job", "a")
	s.Delete(k)
	ts := s.Tombstones()
	require.Len(t, ts, 1)
	require.Equal(t, k, ts[0].Key)
	s.ForgetTombstone(k, ts[0].Version+1)
	require.Len(t, s.Tombstones(), 1, "another version is not forgotten")
	s.ForgetTombstone(k, ts[0].Version)
	require.Empty(t, s.Tombstones())
	s.Delete(k)
	clock.advance(time.Minute)
	require.Empty(t, s.Tombstones(), "past the TTL")
}
