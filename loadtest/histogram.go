package loadtest

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: every power-of-two range of values
// is split into 2^subBits linear buckets, so a reported value is at most
// 1/2^subBits (0.8 %) above the true one. Values below 2^subBits ns are exact.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	// numBuckets covers every non-negative int64 nanosecond count.
	numBuckets = subBuckets + (63-subBits)*subBuckets
)

// Histogram is a lock-free, log-linear latency histogram in the spirit of
// HdrHistogram: bounded memory (~60 KB) whatever the run length, ≤0.8 %
// relative error, and safe for concurrent Record and Snapshot calls.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64 // nanoseconds; overflows only after ~584 years of latency
	max    atomic.Int64
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.total.Add(1)
	h.sum.Add(uint64(v))
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			return
		}
	}
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Quantile returns the smallest bucket upper bound below which a fraction q
// of the recorded durations fall, clamped to the largest recorded duration.
// It returns 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = min(max(rank, 1), total)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketHigh(i)), h.Max())
		}
	}
	return h.Max()
}

// Max returns the largest recorded duration.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the arithmetic mean of the recorded durations.
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// bucketOf maps a value to its bucket: values below subBuckets get a bucket
// each; above, the top subBits+1 significant bits select the bucket.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return subBuckets + shift*subBuckets + int(v>>shift) - subBuckets
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := (i - subBuckets) / subBuckets
	sub := uint64((i-subBuckets)%subBuckets + subBuckets)
	return (sub+1)<<shift - 1
}
