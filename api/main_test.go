package api

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind, such as
// a push still parked in admission control.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
