package loadtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRouterPicksOnlyEndpointsInService(t *testing.T) {
	r, err := newRouter(RouteRandom, []string{"http://a:1", "b:2", "http://c:3/"})
	require.NoError(t, err)
	r.eps[1].takeOut()
	seen := map[string]int{}
	for range 600 {
		e, _ := r.pick(1)
		seen[e.base.Load().Host]++
	}
	require.Zero(t, seen["b:2"], "an endpoint out of service gets no push")
	require.Greater(t, seen["a:1"], 200, "the live endpoints share the pushes: %v", seen)
	require.Greater(t, seen["c:3"], 200, "the live endpoints share the pushes: %v", seen)

	r.eps[1].putBack()
	e, _ := r.pick(1)
	for e != r.eps[1] {
		e, _ = r.pick(1) // random: it comes up within a few picks
	}
}

func TestRouteNodeFallsBackWhileItsPeerIsOut(t *testing.T) {
	r, err := newRouter(RouteNode, []string{"http://a:1", "http://b:2"})
	require.NoError(t, err)
	for range 10 {
		e, _ := r.pick(3)
		require.Same(t, r.eps[1], e, "node 3 of 2 peers pushes to the second")
	}
	r.eps[1].takeOut()
	for range 10 {
		e, _ := r.pick(3)
		require.Same(t, r.eps[0], e)
	}
	r.eps[0].takeOut()
	e, _ := r.pick(3)
	require.Same(t, r.eps[1], e, "with nothing in service a push goes to its own peer and fails there")
}

func TestEndpointTellsAKillUnderAPush(t *testing.T) {
	r, err := newRouter(RouteNode, []string{"http://a:1"})
	require.NoError(t, err)
	e, before := r.pick(0)
	require.False(t, e.killedSince(before))
	e.takeOut()
	require.True(t, e.killedSince(before))
	e.putBack()
	_, after := r.pick(0)
	require.True(t, e.killedSince(before), "a restart does not undo the kill")
	require.False(t, e.killedSince(after))
}

func TestAimReplacesTheBaseURL(t *testing.T) {
	r, err := newRouter(RouteNode, []string{"http://new:2/prefix"})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPut, "http://old:1/gw/metrics/job/j/instance/a%2Fb@base64?x=1", nil)
	require.NoError(t, err)
	require.NoError(t, r.eps[0].aim(req))
	require.Equal(t, "http://new:2/prefix/metrics/job/j/instance/a%2Fb@base64?x=1", req.URL.String())
	require.Equal(t, "new:2", req.Host)

	bad, err := http.NewRequest(http.MethodGet, "http://old:1/metrics", nil)
	require.NoError(t, err)
	require.ErrorContains(t, r.eps[0].aim(bad), "no /metrics/job/")
}

// TestFailuresCountRetryAfterByCode runs a fleet against a target that
// refuses every third push, half of the refusals without Retry-After.
func TestFailuresCountRetryAfterByCode(t *testing.T) {
	t.Parallel()
	fake := &fakeGateway{}
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/metrics/job/") {
			mu.Lock()
			n++
			refuse, retry := n%3 == 0, n%6 == 0
			mu.Unlock()
			if refuse {
				if retry {
					w.Header().Set("Retry-After", "1")
				}
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := quickFleet(srv.URL)
	cfg.Check = false
	rep := runFake(t, cfg)

	e := rep.Errors
	require.Positive(t, e.Total)
	require.Equal(t, e.Total, e.Status5xx)
	require.Equal(t, map[string]uint64{"503": e.Total}, e.StatusCodes)
	require.Equal(t, e.Total/2, e.RetryAfter["503"], "every second refusal carried Retry-After")
}
