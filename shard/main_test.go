package shard

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: the
// membership worker, the run loop and memberlist's own goroutines must all
// be gone after Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
