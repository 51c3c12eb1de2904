package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/internal/poll"
)

func TestHeadroomPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		base      int
		min, live uint64
		want      int
	}{
		{50, 16 * mib, 0, 400},                // before the first collection: the runtime's minimum heap
		{50, 16 * mib, 1 * mib, 400},          // below it, likewise
		{50, 16 * mib, 4 * mib, 400},          // 4 MiB + 16 MiB
		{50, 16 * mib, 10 * mib, 160},         // 10 MiB + 16 MiB
		{50, 16 * mib, 30 * mib, 54},          // rounded up: 53.3 would give a little less
		{50, 16 * mib, 32 * mib, 50},          // GOGC=50 gives 16 MiB by itself
		{50, 16 * mib, 400 * mib, 50},         // and more above
		{300, 16 * mib, 4 * mib, 400},         // the operator's 300 gives 12 MiB
		{300, 16 * mib, 8 * mib, 300},         // and here 24 MiB
		{50, 1 << 62, 4 * mib, math.MaxInt32}, // an absurd minimum is capped, not wrapped
	} {
		t.Run(fmt.Sprintf("base=%d,min=%d,live=%d", tt.base, tt.min, tt.live), func(t *testing.T) {
			got := headroomPercent(tt.base, tt.min, tt.live)
			require.Equal(t, tt.want, got)
			live := max(tt.live, runtimeMinHeap)
			require.GreaterOrEqual(t, live*uint64(got)/100, min(tt.min, live*math.MaxInt32/100), "headroom below the minimum")
		})
	}
}

// gcTarget returns the collector's target in force, without changing it.
func gcTarget() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// liveHeap returns the live heap the last collection marked.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: liveHeapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestGCHeadroomFollowsTheLiveHeap runs the chain on the test process's own
// heap: the target goes up while the live heap is small, back to the base
// while 64 MiB more is live, up again once that is freed, and stays where
// it is put once the chain is stopped.
func TestGCHeadroomFollowsTheLiveHeap(t *testing.T) {
	const base, minBytes = 50, 16 << 20
	orig := debug.SetGCPercent(base)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	h := newGCHeadroom(base, minBytes)
	h.start()
	t.Cleanup(h.stop)

	// targetFor collects until the chain has set the target the live heap
	// calls for (a collection's cleanups run after it, on their own).
	targetFor := func(what string, want func(live uint64) bool) {
		t.Helper()
		poll.Until(t, 10*time.Second, func() error {
			runtime.GC()
			live := liveHeap()
			if got := gcTarget(); got != headroomPercent(base, minBytes, live) || !want(live) {
				return fmt.Errorf("%s: target %d at a live heap of %d bytes, want %d", what, got, live, headroomPercent(base, minBytes, live))
			}
			return nil
		})
	}
	targetFor("small heap", func(live uint64) bool { return live < 32<<20 && gcTarget() > base })

	held := make([][]*int, 64) // 64 MiB of pointers, live until released
	for i := range held {
		held[i] = make([]*int, (1<<20)/8)
	}
	targetFor("64 MiB more live", func(live uint64) bool { return live >= 64<<20 && gcTarget() == base })
	runtime.KeepAlive(held)
	held = nil

	targetFor("freed again", func(live uint64) bool { return live < 32<<20 && gcTarget() > base })

	h.stop()
	require.Equal(t, base, gcTarget(), "stop restores the base target")
	// The cleanup the chain armed last runs after the next collection and
	// must arm no other, nor touch the target.
	poll.Until(t, 10*time.Second, func() error {
		runtime.GC()
		if h.armed() {
			return fmt.Errorf("the chain's last cleanup has not run")
		}
		return nil
	})
	const put = 77
	debug.SetGCPercent(put)
	for range 3 {
		runtime.GC()
	}
	require.False(t, h.armed(), "a stopped chain armed another cleanup")
	require.Equal(t, put, gcTarget(), "a stopped chain changed the target")
}

// armed reports whether a cleanup of the chain is yet to run.
func (h *gcHeadroom) armed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending
}

func TestGCHeadroomOff(t *testing.T) {
	orig := debug.SetGCPercent(50)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	for _, tt := range []struct {
		name     string
		pct      int
		minBytes int64
	}{
		{"no minimum", 50, 0},
		{"GOGC=off", -1, 16 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(tt.pct)
			var logs bytes.Buffer
			stop := startGCHeadroom(tt.minBytes, slog.New(slog.NewTextHandler(&logs, nil)))
			defer stop()
			require.Contains(t, logs.String(), "no minimum headroom")
			runtime.GC()
			require.Equal(t, tt.pct, debug.SetGCPercent(tt.pct))
		})
	}
	debug.SetGCPercent(50)
}

func TestGCMinHeadroomFlag(t *testing.T) {
	err := run(t.Context(), []string{"--runtime.gc-min-headroom-bytes=-1"}, io.Discard, io.Discard)
	require.EqualError(t, err, "invalid --runtime.gc-min-headroom-bytes -1: must be 0 (none) or more")
}
