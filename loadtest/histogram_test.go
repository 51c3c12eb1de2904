package loadtest

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBucketBoundsContainTheirValues(t *testing.T) {
	values := []uint64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 123_456, 1 << 40, 1<<40 + 12345, math.MaxInt64}
	for _, v := range values {
		i := bucketOf(v)
		require.Less(t, i, numBuckets, "value %d", v)
		require.GreaterOrEqual(t, bucketHigh(i), v, "value %d", v)
		if i > 0 {
			require.Less(t, bucketHigh(i-1), v, "value %d belongs in an earlier bucket", v)
		}
	}
}

func TestBucketsAreExactBelowSubBuckets(t *testing.T) {
	for v := range uint64(subBuckets) {
		require.Equal(t, v, bucketHigh(bucketOf(v)))
	}
}

func TestBucketRelativeErrorIsBounded(t *testing.T) {
	for v := uint64(subBuckets); v < 1<<50; v = v*3/2 + 7 {
		high := bucketHigh(bucketOf(v))
		require.LessOrEqual(t, float64(high-v)/float64(v), 1.0/subBuckets, "value %d reported as %d", v, high)
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"single", []time.Duration{3 * time.Millisecond}, 0.99, 3 * time.Millisecond},
		{"median of 1..100 µs", microseconds(1, 100), 0.5, 50 * time.Microsecond},
		{"p90 of 1..100 µs", microseconds(1, 100), 0.9, 90 * time.Microsecond},
		{"p99 of 1..1000 µs", microseconds(1, 1000), 0.99, 990 * time.Microsecond},
		{"max is clamped", []time.Duration{time.Second, time.Second}, 1, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			require.InEpsilon(t, float64(tt.want)+1, float64(got)+1, 1.0/subBuckets, "got %v want %v", got, tt.want)
		})
	}
}

func microseconds(from, to int) []time.Duration {
	var ds []time.Duration
	for i := from; i <= to; i++ {
		ds = append(ds, time.Duration(i)*time.Microsecond)
	}
	return ds
}

func TestHistogramMeanMaxCount(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{time.Millisecond, 3 * time.Millisecond, -time.Second} {
		h.Record(d)
	}
	require.Equal(t, uint64(3), h.Count())
	require.Equal(t, 3*time.Millisecond, h.Max())
	require.Equal(t, 4*time.Millisecond/3, h.Mean(), "negative durations count as zero")
}

func TestHistogramConcurrentRecord(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	require.Equal(t, uint64(4000), h.Count())
	require.Equal(t, 3999*time.Microsecond, h.Max())
	require.InEpsilon(t, float64(2000*time.Microsecond), float64(h.Quantile(.5)), 0.01)
}
