// Package cputime reads the CPU time this process has used, on every
// thread, for the benchmarks' cpu-ns/op: on a machine shared with other
// work it moves far less than ns/op, and for an in-process cluster it is
// every peer's share of a push together.
package cputime

import (
	"testing"
	"time"
)

// Meter is the process's CPU time at the moment Start was called.
type Meter struct {
	start time.Duration
	ok    bool // the CPU time could be read
}

// Start reads the process's CPU time.
func Start() Meter {
	t, ok := process()
	return Meter{start: t, ok: ok}
}

// Report adds cpu-ns/op over n operations since m to b; nothing where the
// CPU time cannot be read, or for no operations.
func (m Meter) Report(b *testing.B, n int) {
	end, ok := process()
	if !m.ok || !ok || n == 0 {
		return
	}
	b.ReportMetric(float64((end-m.start).Nanoseconds())/float64(n), "cpu-ns/op")
}

// PerOp is Report over the benchmark's b.N operations, for a deferred
// call: defer cputime.Start().PerOp(b).
func (m Meter) PerOp(b *testing.B) { m.Report(b, b.N) }
