package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeProcessEnv) != "" {
		os.Exit(runFakeProcess(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// quickFleet is a fleet run short enough for a unit test: 20 nodes every
// 100 ms for 600 ms, checked afterwards.
func quickFleet(url string) Config {
	cfg := DefaultConfig()
	cfg.URLs = []string{url}
	cfg.Nodes, cfg.Interval, cfg.Jitter, cfg.Duration = 20, 100*time.Millisecond, 20*time.Millisecond, 600*time.Millisecond
	cfg.Timeout, cfg.Check, cfg.Progress = 5*time.Second, true, false
	return cfg
}

// runFake runs cfg against fake and returns the one report.
func runFake(t *testing.T, cfg Config) Report {
	t.Helper()
	sum, err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	require.Len(t, sum.Runs, 1)
	return sum.Runs[0]
}

func startFake(t *testing.T, g *fakeGateway) string {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestFleetIsCompleteAgainstFake is not parallel: it counts the process's
// goroutines, so no other run may overlap it.
func TestFleetIsCompleteAgainstFake(t *testing.T) {
	rep := runFake(t, quickFleet(startFake(t, &fakeGateway{})))

	// Every node's first push falls in the first interval; how many follow
	// depends on the machine's load, so only the first is certain.
	require.GreaterOrEqual(t, rep.Succeeded, uint64(20))
	require.Equal(t, rep.Pushes, rep.Succeeded)
	require.Zero(t, rep.Errors.Total)
	require.Equal(t, rep.Succeeded, rep.Latency.Count)
	require.Positive(t, rep.Latency.P50MS)
	require.LessOrEqual(t, rep.Latency.P50MS, rep.Latency.P99MS)
	require.Positive(t, rep.BytesSent)
	require.Zero(t, rep.Goroutines, "pushers left goroutines behind")

	c := rep.Check
	require.NotNil(t, c)
	require.True(t, c.OK, "problems: %v", c.Problems)
	require.Equal(t, 20, c.Expected)
	require.Equal(t, 20, c.OKGroups)
	require.Zero(t, c.Missing)
	require.Zero(t, c.Duplicated)
	require.Zero(t, c.Stale)
	require.Zero(t, c.Incomplete)
}

func TestClosedTextPostCountsPushes(t *testing.T) {
	t.Parallel()
	cfg := quickFleet(startFake(t, &fakeGateway{}))
	cfg.Mode, cfg.Nodes, cfg.Concurrency, cfg.Count, cfg.Duration = ModeClosed, 10, 4, 200, 0
	cfg.Format, cfg.Method, cfg.Series = FormatText, MethodPost, 20
	rep := runFake(t, cfg)

	require.Equal(t, uint64(200), rep.Pushes)
	require.Equal(t, uint64(200), rep.Succeeded)
	require.True(t, rep.Check.OK, "problems: %v", rep.Check.Problems)
	require.Equal(t, 10, rep.Check.OKGroups)
}

func TestDroppingTargetYieldsMissing(t *testing.T) {
	t.Parallel()
	fake := &fakeGateway{dropEvery: 4}
	rep := runFake(t, quickFleet(startFake(t, fake)))

	dropped, _ := fake.faults()
	require.Positive(t, dropped)
	require.Zero(t, rep.Errors.Total, "the fake acknowledges what it drops")
	require.False(t, rep.Check.OK)
	require.Equal(t, dropped, rep.Check.Missing)
	require.Equal(t, rep.Check.Expected-dropped, rep.Check.OKGroups)
	require.Contains(t, rep.Check.Problems[0], "missing")
}

func TestTwoPeersExposingOneGroupYieldDuplicated(t *testing.T) {
	t.Parallel()
	url := startFake(t, &fakeGateway{})
	cfg := quickFleet(url)
	cfg.ScrapeURLs = []string{url + "/metrics", url + "/metrics"} // two "peers" that both expose everything
	rep := runFake(t, cfg)

	require.False(t, rep.Check.OK)
	require.Equal(t, 20, rep.Check.Duplicated)
	require.Len(t, rep.Check.Peers, 2)
}

func TestDuplicatingTargetYieldsDuplicated(t *testing.T) {
	t.Parallel()
	rep := runFake(t, quickFleet(startFake(t, &fakeGateway{duplicate: true})))

	require.False(t, rep.Check.OK)
	require.Equal(t, 20, rep.Check.Duplicated)
}

func TestFrozenGroupsAreStale(t *testing.T) {
	t.Parallel()
	fake := &fakeGateway{freezeEvery: 5}
	rep := runFake(t, quickFleet(startFake(t, fake)))

	_, frozen := fake.faults()
	require.Positive(t, frozen, "no frozen group was pushed twice")
	require.False(t, rep.Check.OK)
	require.Equal(t, frozen, rep.Check.Stale)
	require.Contains(t, rep.Check.Problems[0], "stale")
}

func TestChurnedGroupsExpireWithTTL(t *testing.T) {
	t.Parallel()
	cfg := quickFleet(startFake(t, &fakeGateway{honourTTL: true}))
	// The TTL leaves the check a second to see the live groups.
	cfg.Churn, cfg.TTL, cfg.TTLGrace = 0.25, time.Second, time.Second
	rep := runFake(t, cfg)

	// On a loaded machine some live groups may lapse before the check
	// scrapes them; none may be missing, and every churned one must expire.
	c := rep.Check
	require.Positive(t, c.Churned)
	require.Equal(t, c.Churned, c.Expired, "problems: %v", c.Problems)
	require.Zero(t, c.Missing+c.Duplicated+c.Stale+c.Incomplete, "problems: %v", c.Problems)
	require.Equal(t, 20, c.Churned+c.Expected+c.Lapsed+c.Unacked)
}

func TestChurnedGroupsThatNeverExpireFailTheCheck(t *testing.T) {
	t.Parallel()
	// Like the real Pushgateway: the TTL header is ignored.
	cfg := quickFleet(startFake(t, &fakeGateway{}))
	cfg.Churn, cfg.TTL, cfg.TTLGrace = 0.25, 500*time.Millisecond, 100*time.Millisecond
	rep := runFake(t, cfg)

	c := rep.Check
	require.False(t, c.OK)
	require.Positive(t, c.Churned)
	require.Zero(t, c.Expired)
	require.Equal(t, c.Expected, c.OKGroups, "live groups are still checked")
	require.Contains(t, c.Problems[len(c.Problems)-1], "not expired")
}

func TestUnreachableTargetCountsConnectionErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakeGateway{})
	url := srv.URL
	srv.Close() // nothing listens there any more
	cfg := quickFleet(url)
	cfg.Check = false
	rep := runFake(t, cfg)

	require.Zero(t, rep.Succeeded)
	require.Equal(t, rep.Pushes, rep.Errors.Total)
	require.Equal(t, rep.Pushes, rep.Errors.Connection)
}

func TestCheckFindsPeersThroughHTTPSD(t *testing.T) {
	t.Parallel()
	url := startFake(t, &fakeGateway{})
	hostPort := strings.TrimPrefix(url, "http://")
	sd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `[{"targets":[%q],"labels":{"job":"pushring"}}]`, hostPort)
	}))
	t.Cleanup(sd.Close)
	cfg := quickFleet(url)
	cfg.SDURL = sd.URL
	rep := runFake(t, cfg)

	require.True(t, rep.Check.OK, "problems: %v", rep.Check.Problems)
	require.Len(t, rep.Check.Peers, 1)
	require.Equal(t, url+"/metrics", rep.Check.Peers[0].URL)
	require.Equal(t, 20, rep.Check.Peers[0].Groups)
}

func TestCheckWaitRescrapesUntilEveryGroupIsThere(t *testing.T) {
	t.Parallel()
	cfg := quickFleet(startFake(t, &fakeGateway{blankPages: 2}))
	cfg.CheckWait = time.Minute
	rep := runFake(t, cfg)

	c := rep.Check
	require.True(t, c.OK, "problems: %v", c.Problems)
	require.NotNil(t, c.First, "the first scrape found every group missing")
	require.Equal(t, 20, c.First.Missing)
	require.False(t, c.First.OK)
	require.Greater(t, c.WaitedSeconds, 1.5, "two scrapes a second apart came back blank")
	require.Less(t, c.WaitedSeconds, 30.0)
}

func TestCheckWaitEndsWithTheProblemsOfTheLastScrape(t *testing.T) {
	t.Parallel()
	cfg := quickFleet(startFake(t, &fakeGateway{freezeEvery: 5}))
	cfg.CheckWait = 1500 * time.Millisecond
	rep := runFake(t, cfg)

	c := rep.Check
	require.False(t, c.OK)
	require.NotNil(t, c.First)
	require.Positive(t, c.Stale)
	require.Equal(t, c.First.Stale, c.Stale, "frozen groups stay stale")
	require.GreaterOrEqual(t, c.WaitedSeconds, 1.5)
}
