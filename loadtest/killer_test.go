package loadtest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakePeers starts n fake gateway processes (the test binary, see
// runFakeProcess) and returns them as a target with a router over them.
// With portTaken a restart on the old port fails, as when another process
// took it meanwhile.
func fakePeers(t *testing.T, cfg *Config, n int, portTaken bool) (*target, *router) {
	t.Helper()
	httpPorts, err := ports(n)
	require.NoError(t, err)
	dir := t.TempDir()
	procs, err := spawnSet(context.Background(), cfg, "fake", os.Args[0], dir, httpPorts, func(i int) []string {
		return []string{"--web.listen-address=" + loopback(httpPorts[i])}
	}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	tg := processTarget("fake", procs)
	t.Cleanup(tg.stop)
	tg.respawn = func(ctx context.Context, i int, fresh bool) (*process, error) {
		port := httpPorts[i]
		if !fresh && portTaken {
			return nil, errors.New("bind: address already in use")
		}
		if fresh {
			ps, err := ports(1)
			if err != nil {
				return nil, err
			}
			port = ps[0]
		}
		return startReady(ctx, cfg, procs[i].name, os.Args[0], []string{"--web.listen-address=" + loopback(port)},
			loopback(port), filepath.Join(dir, "restarted.log"))
	}
	r, err := newRouter(RouteRandom, tg.pushURLs)
	require.NoError(t, err)
	return tg, r
}

func TestKillerKillsAndRestartsOnTheSamePort(t *testing.T) {
	cfg := spawnConfig(t, 2)
	cfg.KillAfter, cfg.KillPeer, cfg.RestartAfter = 50*time.Millisecond, 1, 100*time.Millisecond
	tg, r := fakePeers(t, &cfg, 2, false)
	victim, url := tg.procs[1], tg.pushURLs[1]

	k := &killer{cfg: &cfg, t: tg, r: r, start: time.Now(), logger: slog.New(slog.DiscardHandler)}
	rep := startKiller(context.Background(), k)()

	require.Empty(t, rep.Error)
	require.Equal(t, "fake-1", rep.Peer)
	require.GreaterOrEqual(t, rep.KilledAt, 0.05)
	require.GreaterOrEqual(t, rep.RestartedAt, rep.KilledAt+0.1)
	require.GreaterOrEqual(t, rep.ReadyAt, rep.RestartedAt)
	require.False(t, rep.NewPorts)
	<-victim.exited
	require.NotSame(t, victim, tg.procs[1], "the restarted process takes its place")
	require.Equal(t, url, tg.pushURLs[1], "on the same port")
	require.Len(t, tg.scrapeURLs, 2)
	e, state := r.eps[1], r.eps[1].state.Load()
	require.NotZero(t, state&inService, "back in service once ready")
	require.Equal(t, uint64(1), state>>1, "one kill counted")
	require.Equal(t, url, e.base.Load().String())
}

func TestKillerWithoutRestartLeavesThePeerOut(t *testing.T) {
	cfg := spawnConfig(t, 2)
	cfg.KillAfter, cfg.KillPeer = 10*time.Millisecond, 0
	tg, r := fakePeers(t, &cfg, 2, false)
	survivor := tg.scrapeURLs[1]

	k := &killer{cfg: &cfg, t: tg, r: r, start: time.Now(), logger: slog.New(slog.DiscardHandler)}
	rep := startKiller(context.Background(), k)()

	require.Empty(t, rep.Error)
	require.Zero(t, rep.RestartedAt)
	require.Equal(t, []string{survivor}, tg.scrapeURLs, "the check scrapes the peer that is left")
	for range 20 {
		e, _ := r.pick(0)
		require.Same(t, r.eps[1], e, "no push goes to the dead peer")
	}
}

func TestKillerStopsWithTheRun(t *testing.T) {
	cfg := spawnConfig(t, 2)
	cfg.KillAfter, cfg.KillPeer = time.Hour, 1
	tg, r := fakePeers(t, &cfg, 2, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	k := &killer{cfg: &cfg, t: tg, r: r, start: time.Now(), logger: slog.New(slog.DiscardHandler)}
	rep := startKiller(ctx, k)()

	require.Equal(t, "the run ended before the kill", rep.Error)
	require.Zero(t, rep.KilledAt)
	select {
	case <-tg.procs[1].exited:
		t.Fatal("the peer was killed after the run ended")
	default:
	}
}

func TestKillerRestartsOnNewPortsWhenTheOldOnesAreTaken(t *testing.T) {
	cfg := spawnConfig(t, 2)
	cfg.KillAfter, cfg.KillPeer, cfg.RestartAfter = 10*time.Millisecond, 1, 10*time.Millisecond
	tg, r := fakePeers(t, &cfg, 2, true)
	old := tg.pushURLs[1]

	k := &killer{cfg: &cfg, t: tg, r: r, start: time.Now(), logger: slog.New(slog.DiscardHandler)}
	rep := startKiller(context.Background(), k)()

	require.Empty(t, rep.Error)
	require.True(t, rep.NewPorts)
	require.NotEqual(t, old, tg.pushURLs[1])
	require.Equal(t, tg.pushURLs[1]+"/metrics", tg.scrapeURLs[1], "the check scrapes it where it is now")
	require.Equal(t, tg.pushURLs[1], r.eps[1].base.Load().String(), "pushes go where it is now")
	require.True(t, readyOnce(context.Background(), &http.Client{Timeout: 5 * time.Second}, tg.pushURLs[1]+"/-/ready"))
}
