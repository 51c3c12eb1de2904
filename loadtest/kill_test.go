package loadtest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFleetThroughKillAndRestart builds ./cmd/pushring and runs the
// replication scenario in small: 3 peers, 300 nodes pushing every second
// through random live peers; the second peer is SIGKILLed 3 s in and
// started again, without a persistence file, 4 s later. Every group must
// be exposed exactly once with its last value at the first scrape, and of
// the pushes that were not on their way to the peer when it was killed, at
// most 1 % may fail, each with a 503 and Retry-After. The pushes in flight
// to it at that instant fail with a reset connection whatever the target
// does (counted as killed_in_flight); how many there are depends only on
// how many were waiting there, so the test logs them and bounds the rest.
func TestFleetThroughKillAndRestart(t *testing.T) {
	if testing.Short() && os.Getenv("PUSHRING_REQUIRE_REAL") != "1" {
		t.Skip("builds and runs three gateway processes for 15 s")
	}
	cfg := quickFleet("")
	cfg.URLs = nil
	cfg.Spawn, cfg.SourceDir, cfg.ReadyTimeout = 3, "..", time.Minute
	cfg.Nodes, cfg.Interval, cfg.Jitter, cfg.Duration = 300, time.Second, 100*time.Millisecond, 15*time.Second
	cfg.Route, cfg.KillAfter, cfg.KillPeer, cfg.RestartAfter = RouteRandom, 3*time.Second, 1, 4*time.Second
	cfg.Timeout = DefaultConfig().Timeout // a loaded machine must not turn slow answers into failures

	sum, err := Run(context.Background(), cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), nil)
	require.NoError(t, err)
	require.Len(t, sum.Runs, 1)
	rep := sum.Runs[0]

	k := rep.Kill
	require.NotNil(t, k)
	require.Empty(t, k.Error)
	require.Equal(t, "pushring-1", k.Peer)
	require.Greater(t, k.KilledAt, 2.9)
	require.GreaterOrEqual(t, k.RestartedAt, k.KilledAt+3.9)
	require.GreaterOrEqual(t, k.ReadyAt, k.RestartedAt)
	require.Less(t, k.ReadyAt, cfg.Duration.Seconds(), "back in service before the pushes end")

	e := rep.Errors
	t.Logf("%d pushes, %d failed: %v, by code %v, with Retry-After %v; killed at %.1fs with %d pushes in flight to it, restarted %.1fs, ready %.1fs",
		rep.Pushes, e.Total, errorText(e), e.StatusCodes, e.RetryAfter, k.KilledAt, k.InFlight, k.RestartedAt, k.ReadyAt)
	others := e.Total - e.Killed
	require.LessOrEqual(t, float64(others), 0.01*float64(rep.Pushes-e.Killed), "at most 1 %% of the pushes fail; samples %v", e.Samples)
	require.Equal(t, others, e.StatusCodes["503"], "every failure but those in flight at the kill is a 503; samples %v", e.Samples)
	require.Equal(t, e.StatusCodes["503"], e.RetryAfter["503"], "every 503 carries Retry-After")

	c := rep.Check
	require.NotNil(t, c)
	require.True(t, c.OK, "problems: %v", c.Problems)
	require.Equal(t, 300, c.Expected)
	require.Len(t, c.Peers, 3, "the restarted peer is scraped too")
}
