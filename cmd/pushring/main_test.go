package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// goroutine run() starts must be owned, stopped and joined.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
