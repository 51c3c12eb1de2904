package loadtest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFleetAgainstRealGateway builds ./cmd/pushring, spawns one peer and runs
// a short fleet against it: every node's group exposed once with its last
// value, and the nodes that stop pushing expire by their Pushring-TTL. It
// keeps the harness and the gateway from drifting apart.
func TestFleetAgainstRealGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	// A -race binary sleeps a second on exit unless told not to.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	cfg := quickFleet("")
	cfg.URLs = nil
	cfg.Spawn, cfg.SourceDir, cfg.ReadyTimeout = 1, "..", time.Minute
	cfg.Nodes, cfg.Interval, cfg.Jitter, cfg.Duration = 40, 200*time.Millisecond, 50*time.Millisecond, 2*time.Second
	cfg.TTL, cfg.Churn, cfg.TTLGrace = time.Second, 0.25, 5*time.Second

	sum, err := Run(context.Background(), cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), nil)
	require.NoError(t, err)
	require.Len(t, sum.Runs, 1)
	rep := sum.Runs[0]
	require.Equal(t, "pushring", rep.Target)
	require.Zero(t, rep.Errors.Total, "errors: %v", rep.Errors.Samples)
	require.Positive(t, rep.Succeeded)
	require.NotNil(t, rep.Check)
	require.True(t, rep.Check.OK, "problems: %v", rep.Check.Problems)
	require.Equal(t, 10, rep.Check.Churned, "a quarter of 40 nodes stop halfway")
	require.Equal(t, rep.Check.Churned, rep.Check.Expired)
}
