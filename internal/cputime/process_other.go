//go:build !unix

package cputime

import "time"

// process is not available here; benchmarks then leave out cpu-ns/op.
func process() (time.Duration, bool) { return 0, false }
