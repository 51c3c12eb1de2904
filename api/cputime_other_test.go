//go:build !unix

package api

import "time"

// processCPU is not available here; benchmarks then leave out cpu-ns/op.
func processCPU() (time.Duration, bool) { return 0, false }
