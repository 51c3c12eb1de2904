package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/ingest"
)

// stalledPush opens a connection to srv and sends a push's headers and the
// first bytes of a body announced as much longer; the caller reads the
// answer from the returned reader.
func stalledPush(t *testing.T, srv *httptest.Server, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n# TYPE m gauge\n", path)
	require.NoError(t, err)
	return c, bufio.NewReader(c)
}

// A body that stalls holds its connection and nothing else: the one push
// slot stays free for a normal push, and the stalled one is cut off by
// --push.body-timeout with 408 naming the flags.
func TestStalledBodyHoldsNoSlot(t *testing.T) {
	ta := newTestAPI(t, Config{MaxInflight: 1, MaxQueueWait: time.Millisecond, BodyTimeout: 300 * time.Millisecond})
	srv := httptest.NewServer(ta.Handler())
	defer srv.Close()
	c, rd := stalledPush(t, srv, "/metrics/job/stalled")
	pollUntil(t, "the stalled body is being read", func() bool { return gaugeValue(t, ta.reg, "pushring_push_bodies_reading") == 1 })

	resp, err := http.Post(srv.URL+"/metrics/job/normal", "text/plain", strings.NewReader("m 1\n"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	stalled, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(stalled.Body)
	require.Equal(t, http.StatusRequestTimeout, stalled.StatusCode)
	require.Equal(t, "push body not received in time: it must arrive within --push.body-timeout=300ms\n", string(body))
	require.Equal(t, []string{ingest.ReasonBodyTimeout}, ta.ing.refusedReasons())
	require.Len(t, ta.ing.reqs, 1, "only the normal push reached the ingester")
}

// A body that trickles in below --push.min-body-rate is cut off once the
// grace has passed, long before --push.body-timeout.
func TestTricklingBodyBelowMinRate(t *testing.T) {
	ta := newTestAPI(t, Config{BodyTimeout: time.Minute, MinBodyRate: 1 << 20})
	ta.bodies.grace = 50 * time.Millisecond
	srv := httptest.NewServer(ta.Handler())
	defer srv.Close()
	c, rd := stalledPush(t, srv, "/metrics/job/trickle")
	// One byte at a time as the client's answer is awaited: far below
	// 1 MiB/s, and the connection is kept busy, so only the rate can end it.
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				if _, err := c.Write([]byte("#")); err != nil {
					return
				}
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, "push body not received in time: it must arrive within --push.body-timeout=1m0s and, after the first 50ms, at --push.min-body-rate=1048576 bytes/s or faster\n", string(body))
	t.Logf("cut off after %s", time.Since(start))
	require.Less(t, time.Since(start), 30*time.Second, "the minute of --push.body-timeout did not run out")
}

// Over the memory budget a push gets 503 with Retry-After naming the flag
// before it is admitted; the budget is given back once pushes finish.
func TestBodyOverMemoryBudget(t *testing.T) {
	ta := newBlockingAPI(t, 4, time.Second)
	ta.API.bodies.maxBody = 1000
	ta.API.bodies.budget = newBudget(12000)
	// 1000 bytes, three lines: 1001 buffered, 4×1000 + 3×1070 for
	// decoding and applying (ingest.DecodeCost).
	body := "#" + strings.Repeat("x", 994) + "\nm 1\n"
	codes := make(chan int, 1)
	go func() { codes <- ta.do(http.MethodPut, "/metrics/job/a", strings.NewReader(body)).Code }()
	select {
	case <-ta.ing.entered:
	case code := <-codes:
		t.Fatalf("the first push was answered %d instead of entering the ingester", code)
	}
	require.Equal(t, int64(8211), ta.bodies.budget.inUse())

	w := ta.do(http.MethodPut, "/metrics/job/b", strings.NewReader(body))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Contains(t, w.Body.String(), "push refused: the push bodies being read and decoded hold the memory budget of 12000 bytes")
	require.Contains(t, w.Body.String(), "raise --push.memory-budget-bytes, or retry later")
	require.Equal(t, []string{ingest.ReasonMemoryBudget}, ta.ing.refusedReasons())

	require.Equal(t, int64(8211), ta.bodies.budget.inUse(), "the refused push gave its charge back")
	r := ta.do(http.MethodGet, "/-/ready", nil)
	require.Equal(t, http.StatusOK, r.Code, "8211 of 12000 is not nine tenths")

	ta.unblock()
	require.Equal(t, http.StatusOK, <-codes)
	require.Zero(t, ta.bodies.budget.inUse())
}

// /-/ready is not ready while bodies hold nine tenths of the budget.
func TestReadyWhenBudgetNearlyFull(t *testing.T) {
	ta := newTestAPI(t, Config{})
	ta.bodies.budget = newBudget(1000)
	c := ta.bodies.budget.charge()
	require.NoError(t, c.take(900))
	w := ta.do(http.MethodGet, "/-/ready", nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "overloaded: push bodies hold nine tenths of --push.memory-budget-bytes", w.Body.String())
	c.release()
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/-/ready", nil).Code)
}

func TestBudgetBytes(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   Config
		limit int64
		want  int64
	}{
		{"flag", Config{MemoryBudget: 5 << 20, MaxBodyBytes: 1 << 20}, 1 << 30, 5 << 20},
		{"quarter of the limit", Config{MaxBodyBytes: 16 << 20}, 2 << 30, 512 << 20},
		{"at least four bodies", Config{MaxBodyBytes: 16 << 20}, 128 << 20, 64 << 20},
		{"no limit", Config{MaxBodyBytes: 16 << 20}, 1<<63 - 1, 1 << 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.cfg.budgetBytes(tt.limit))
		})
	}
}

// A push another peer forwards is charged to the same budget as an HTTP
// push, answered 503 with Retry-After over it, counted, and given back on
// release.
func TestBudgetChargesForwardedPushes(t *testing.T) {
	ing := &fakeIngester{}
	body := []byte("#" + strings.Repeat("x", 994) + "\nm 1\n") // as TestBodyOverMemoryBudget
	cost := int64(len(body)) + ingest.DecodeCostOf(body, "")
	b := NewBudget(Config{MemoryBudget: cost + cost/2, MaxBodyBytes: 1000}, ing)
	release, err := b.ChargeForwarded(body, "")
	require.NoError(t, err)
	require.Equal(t, cost, b.b.inUse())

	_, err = b.ChargeForwarded(body, "")
	code, retry := Answer(err)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, 1, retry)
	require.ErrorContains(t, err, "raise --push.memory-budget-bytes")
	require.Equal(t, []string{ingest.ReasonMemoryBudget}, ing.refusedReasons())

	release()
	require.Zero(t, b.b.inUse())
}
