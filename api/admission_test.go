package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/internal/poll"
)

// pollUntil waits until cond holds.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, 10*time.Second, what, cond)
}

// gaugeValue returns the value of the unlabelled gauge name in reg.
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range fams {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1, name)
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("gauge %s not registered", name)
	return 0
}

// blockedPushes starts n pushes that enter the ingester and stay there until
// ta.unblock; it returns once all n are inside, with a channel that yields
// each one's status code when it finishes.
func blockedPushes(t *testing.T, ta *blockingAPI, n int) <-chan int {
	t.Helper()
	codes := make(chan int, n)
	for range n {
		go func() {
			codes <- ta.do(http.MethodPut, "/metrics/job/blocked", strings.NewReader("m 1\n")).Code
		}()
	}
	for range n {
		<-ta.ing.entered
	}
	return codes
}

// blockingAPI is an API whose ingester blocks every push until unblock.
type blockingAPI struct {
	*testAPI
	once sync.Once
}

// newBlockingAPI builds a blockingAPI with the given admission limits.
// unblock is also a cleanup, so no goroutine outlives a failing test.
func newBlockingAPI(t *testing.T, capacity int, wait time.Duration) *blockingAPI {
	t.Helper()
	ta := newTestAPIExact(t, Config{TelemetryPath: "/metrics", MaxInflight: capacity, MaxQueueWait: wait})
	ta.ing.entered = make(chan struct{}, 100)
	ta.ing.release = make(chan struct{})
	b := &blockingAPI{testAPI: ta}
	t.Cleanup(b.unblock)
	return b
}

// unblock lets every blocked and future push through.
func (b *blockingAPI) unblock() { b.once.Do(func() { close(b.ing.release) }) }

func TestAdmissionRefusesPastTheQueueWait(t *testing.T) {
	ta := newBlockingAPI(t, 2, 20*time.Millisecond)
	codes := blockedPushes(t, ta, 2)
	require.Equal(t, 2.0, gaugeValue(t, ta.reg, "pushring_push_inflight"))
	require.Equal(t, 2.0, gaugeValue(t, ta.reg, "pushring_push_inflight_capacity"))

	for _, m := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
		w := ta.do(m, "/metrics/job/late", strings.NewReader("m 1\n"))
		require.Equal(t, http.StatusServiceUnavailable, w.Code, m)
		require.Equal(t, "1", w.Header().Get("Retry-After"))
		require.Equal(t, "push refused: 2 pushes in flight and none finished within 20ms; "+
			"raise --push.max-inflight or --push.max-queue-wait, or retry later\n", w.Body.String())
	}
	require.EqualValues(t, 3, ta.ing.overloaded.Load(), "every refusal is counted by the ingester")
	require.Zero(t, gaugeValue(t, ta.reg, "pushring_push_queue_waiting"), "a refused push no longer waits")

	ta.unblock()
	require.Equal(t, http.StatusOK, <-codes)
	require.Equal(t, http.StatusOK, <-codes)
	require.Zero(t, gaugeValue(t, ta.reg, "pushring_push_inflight"), "finished pushes give their slots back")

	w := ta.do(http.MethodPut, "/metrics/job/after", strings.NewReader("m 1\n"))
	require.Equal(t, http.StatusOK, w.Code)
	require.Empty(t, w.Header().Get("Retry-After"))
	require.EqualValues(t, 3, ta.ing.overloaded.Load())
}

func TestAdmissionWaiterGetsAFreedSlot(t *testing.T) {
	ta := newBlockingAPI(t, 1, time.Minute)
	first := blockedPushes(t, ta, 1)

	second := make(chan int, 1)
	go func() { second <- ta.do(http.MethodPut, "/metrics/job/second", strings.NewReader("m 1\n")).Code }()
	pollUntil(t, "the second push waits", func() bool { return ta.admit.queued() == 1 })
	require.Equal(t, 1.0, gaugeValue(t, ta.reg, "pushring_push_queue_waiting"))

	// Not ready while saturated; healthy all the same.
	w := ta.do(http.MethodGet, "/-/ready", nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "overloaded", w.Body.String())
	w = ta.do(http.MethodGet, "/-/healthy", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "OK", w.Body.String())

	// Waiters are bounded too: with one slot, one waiter is the limit and
	// the next push is refused without waiting its minute.
	w = ta.do(http.MethodPost, "/metrics/job/third", strings.NewReader("m 1\n"))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Equal(t, "push refused: 1 push in flight and 1 more waiting; "+
		"raise --push.max-inflight or --push.max-queue-wait, or retry later\n", w.Body.String())
	require.EqualValues(t, 1, ta.ing.overloaded.Load())

	ta.unblock()
	require.Equal(t, http.StatusOK, <-first)
	<-ta.ing.entered // the waiter got the slot
	require.Equal(t, http.StatusOK, <-second)
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/-/ready", nil).Code)
	require.Zero(t, gaugeValue(t, ta.reg, "pushring_push_queue_waiting"))
	require.Zero(t, gaugeValue(t, ta.reg, "pushring_push_inflight"))
}

func TestAdmissionWaiterLeavesWithItsClient(t *testing.T) {
	ta := newBlockingAPI(t, 1, time.Minute)
	first := blockedPushes(t, ta, 1)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		r := httptest.NewRequestWithContext(ctx, http.MethodPut, "/metrics/job/gone", strings.NewReader("m 1\n"))
		w := httptest.NewRecorder()
		ta.Handler().ServeHTTP(w, r)
		done <- w
	}()
	pollUntil(t, "the second push waits", func() bool { return ta.admit.queued() == 1 })
	cancel()
	w := <-done
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Zero(t, ta.admit.queued(), "a client that left stops waiting")
	require.EqualValues(t, 1, ta.ing.overloaded.Load())

	ta.unblock()
	require.Equal(t, http.StatusOK, <-first)
}

func TestAdmissionWithoutQueueWait(t *testing.T) {
	ta := newBlockingAPI(t, 1, 0)
	first := blockedPushes(t, ta, 1)
	w := ta.do(http.MethodPut, "/metrics/job/x", strings.NewReader("m 1\n"))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "push refused: 1 push in flight and waiting is disabled; "+
		"raise --push.max-inflight or --push.max-queue-wait, or retry later\n", w.Body.String())
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/-/ready", nil).Code,
		"nobody waits, so the peer still takes pushes as fast as they finish")

	ta.unblock()
	require.Equal(t, http.StatusOK, <-first)
}

// Reads never take a push slot: a saturated peer still serves scrapes and
// the JSON API.
func TestAdmissionLeavesReadsAlone(t *testing.T) {
	ta := newBlockingAPI(t, 1, 0)
	first := blockedPushes(t, ta, 1)
	for _, target := range []string{"/metrics", "/api/v1/metrics", "/api/v1/status", "/", "/-/healthy", "/-/ready"} {
		require.Equal(t, http.StatusOK, ta.do(http.MethodGet, target, nil).Code, target)
	}
	ta.unblock()
	require.Equal(t, http.StatusOK, <-first)
}

// BenchmarkAdmission measures what admission control adds to every push:
// one slot taken and given back, from as many goroutines as there are
// CPUs, with slots to spare (the normal case).
func BenchmarkAdmission(b *testing.B) {
	a := NewAdmission(DefaultMaxInflight, DefaultMaxQueueWait)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := a.Acquire(ctx); err != nil {
				b.Error(err)
				return
			}
			a.Release()
		}
	})
}

// BenchmarkAdmissionSaturated measures a refusal when every slot is taken
// and waiting is off: the cost of answering an overloaded peer's 503.
func BenchmarkAdmissionSaturated(b *testing.B) {
	a := NewAdmission(1, 0)
	ctx := context.Background()
	require.NoError(b, a.Acquire(ctx))
	defer a.Release()
	b.ReportAllocs()
	for b.Loop() {
		if a.Acquire(ctx) == nil {
			b.Fatal("acquired a slot that was taken")
		}
	}
}

// --push.max-inflight=0 switches admission control off, as 0 does for
// every limit: pushes beyond any count get in, none waits, /-/ready stays
// 200, and the in-flight gauge still counts them.
func TestAdmissionOff(t *testing.T) {
	ta := newBlockingAPI(t, 0, 0)
	codes := blockedPushes(t, ta, DefaultMaxInflight+1)
	require.Equal(t, float64(DefaultMaxInflight+1), gaugeValue(t, ta.reg, "pushring_push_inflight"))
	require.Equal(t, 0.0, gaugeValue(t, ta.reg, "pushring_push_inflight_capacity"))
	require.Zero(t, ta.admit.queued())
	require.Equal(t, http.StatusOK, ta.do(http.MethodGet, "/-/ready", nil).Code)

	ta.unblock()
	for range DefaultMaxInflight + 1 {
		require.Equal(t, http.StatusOK, <-codes)
	}
	require.Equal(t, 0.0, gaugeValue(t, ta.reg, "pushring_push_inflight"))
}
