package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBreakerOpensAfterTimeoutsAndProbes(t *testing.T) {
	now := time.Unix(0, 0)
	bs := newBreakers(0)
	bs.now = func() time.Time { return now }
	for range breakerThreshold {
		release, err := bs.acquire("b")
		require.NoError(t, err)
		release(false)
	}
	_, err := bs.acquire("b")
	require.ErrorContains(t, err, "passed over after 3 calls in a row got no answer")
	require.True(t, bs.open("b"))
	_, err = bs.acquire("c")
	require.NoError(t, err, "other owners are not affected")

	now = now.Add(breakerCooldownMin)
	probe, err := bs.acquire("b")
	require.NoError(t, err, "after the cool-down one call probes")
	_, err = bs.acquire("b")
	require.Error(t, err, "only one probe at a time")
	probe(false)
	now = now.Add(breakerCooldownMin)
	_, err = bs.acquire("b")
	require.Error(t, err, "a failed probe doubles the cool-down")
	now = now.Add(breakerCooldownMin)
	probe, err = bs.acquire("b")
	require.NoError(t, err)
	probe(true)
	require.False(t, bs.open("b"))
	release, err := bs.acquire("b")
	require.NoError(t, err, "an answer closes it")
	release(true)
}

func TestBreakerBoundsInflightPerOwner(t *testing.T) {
	bs := newBreakers(2)
	r1, err := bs.acquire("b")
	require.NoError(t, err)
	_, err = bs.acquire("b")
	require.NoError(t, err)
	_, err = bs.acquire("b")
	require.ErrorContains(t, err, "already 2 pushes in flight to it")
	_, err = bs.acquire("c")
	require.NoError(t, err)
	r1(true)
	_, err = bs.acquire("b")
	require.NoError(t, err, "a slot came free")
}

func TestBreakerReset(t *testing.T) {
	bs := newBreakers(0)
	for range breakerThreshold {
		release, err := bs.acquire("b")
		require.NoError(t, err)
		release(false)
	}
	require.True(t, bs.open("b"))
	bs.reset("b")
	require.False(t, bs.open("b"), "a member back in the view is called again at once")
	_, err := bs.acquire("b")
	require.NoError(t, err)
}
