package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeProcessEnv makes the test binary act as a gateway process (see
// TestMain), so spawning is tested without building cmd/pushring.
const fakeProcessEnv = "LOADTEST_FAKE_GATEWAY"

// runFakeProcess serves a fakeGateway on --web.listen-address until
// SIGTERM; --help prints flags without cluster ones, like a build that
// cannot cluster yet.
func runFakeProcess(args []string) int {
	addr := ""
	for _, a := range args {
		if a == "--help" {
			fmt.Println("usage: gateway --web.listen-address=ADDR")
			return 0
		}
		if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			addr = v
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: &fakeGateway{}, ReadHeaderTimeout: time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func spawnConfig(t *testing.T, n int) Config {
	t.Setenv(fakeProcessEnv, "1") // inherited by the spawned test binary
	// A -race binary sleeps a second on exit unless told not to.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cfg := quickFleet("")
	cfg.URLs = nil
	cfg.Spawn, cfg.GatewayBin, cfg.ReadyTimeout = n, os.Args[0], 10*time.Second
	return cfg
}

func TestSpawnOneRunsAndChecks(t *testing.T) {
	cfg := spawnConfig(t, 1)
	cfg.Mode, cfg.Scrapes = ModeScrape, 3
	rep := runFake(t, cfg)

	require.Equal(t, "pushring", rep.Target)
	require.Len(t, rep.URLs, 1)
	require.True(t, strings.HasPrefix(rep.URLs[0], "http://127.0.0.1:"))
	require.Equal(t, uint64(20), rep.Succeeded, "scrape mode fills every group once")
	require.True(t, rep.Check.OK, "problems: %v", rep.Check.Problems)
	s := rep.Scrape
	require.NotNil(t, s)
	require.Equal(t, 20*40, s.Series)
	require.Equal(t, uint64(3), s.Latency.Count)
	require.Positive(t, s.Bytes)
	require.Positive(t, s.RSSAfterFillBytes, "RSS of the spawned process")
}

func TestSpawnManyNeedsClusterFlags(t *testing.T) {
	cfg := spawnConfig(t, 3)
	_, err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	require.ErrorIs(t, err, ErrNoClusterFlags)
	require.ErrorContains(t, err, "cluster flags not available in this build")
}

func TestSpawnReportsAnExitingTarget(t *testing.T) {
	cfg := spawnConfig(t, 1)
	cfg.GatewayBin = "/bin/false"
	_, err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	require.ErrorContains(t, err, "exited before it was ready")
}

// TestSpawnRefusesAnotherProcessOnItsPort hands a spawned process a port
// that another server holds and answers /-/ready on: the run must stop
// with that said, not measure the other server. The spawned process
// (sleep) never binds, so only the owner check can tell.
func TestSpawnRefusesAnotherProcessOnItsPort(t *testing.T) {
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: &fakeGateway{}, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(holder) }()
	t.Cleanup(func() { _ = srv.Close() })
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)

	cfg := spawnConfig(t, 1)
	_, err = startReady(context.Background(), &cfg, "squatted", sleep, []string{"60"},
		holder.Addr().String(), filepath.Join(t.TempDir(), "squatted.log"))
	require.ErrorContains(t, err, "another process holds "+holder.Addr().String())
}

func TestPeerArgs(t *testing.T) {
	tests := []struct {
		name    string
		i       int
		cluster []int
		extra   []string
		want    []string
	}{
		{"single peer", 0, nil, nil, []string{"--web.listen-address=127.0.0.1:9091"}},
		{"extra flags last", 0, nil, []string{"--store.ttl=1m"}, []string{"--web.listen-address=127.0.0.1:9091", "--store.ttl=1m"}},
		{"cluster peer seeds every other peer", 1, []int{7946, 7947, 7948}, nil,
			[]string{"--web.listen-address=127.0.0.1:9092", "--cluster.listen-address=127.0.0.1:7947",
				"--cluster.grpc-listen-address=127.0.0.1:0", "--cluster.peer-name=peer-1", "--cluster.settle-timeout=1s",
				"--cluster.peer=127.0.0.1:7946", "--cluster.peer=127.0.0.1:7948"}},
		{"first cluster peer seeds the rest", 0, []int{7946, 7947}, []string{"--cluster.settle-timeout=3s"},
			[]string{"--web.listen-address=127.0.0.1:9091", "--cluster.listen-address=127.0.0.1:7946",
				"--cluster.grpc-listen-address=127.0.0.1:0", "--cluster.peer-name=peer-0", "--cluster.settle-timeout=1s",
				"--cluster.peer=127.0.0.1:7947", "--cluster.settle-timeout=3s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, peerArgs(tt.i, []int{9091, 9092, 9093}, tt.cluster, tt.extra))
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tgateway\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t5\n"
	got, err := parseVmRSS(strings.NewReader(status))
	require.NoError(t, err)
	require.Equal(t, uint64(1234*1024), got)

	_, err = parseVmRSS(strings.NewReader("Name:\tkthread\n"))
	require.ErrorContains(t, err, "no VmRSS")
}

func TestReadOwnRSS(t *testing.T) {
	rss, err := readRSS(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, rss, uint64(1<<20), "a Go test binary holds more than 1 MiB")
}

func TestWorkDirIsKeptOnlyWhenNamed(t *testing.T) {
	named := filepath.Join(t.TempDir(), "run")
	dir, cleanup, err := workDir(named)
	require.NoError(t, err)
	require.Equal(t, named, dir)
	cleanup()
	require.DirExists(t, named, "a named work dir keeps the logs")

	dir, cleanup, err = workDir("")
	require.NoError(t, err)
	require.DirExists(t, dir)
	cleanup()
	require.NoDirExists(t, dir, "a temporary work dir is removed")
}
