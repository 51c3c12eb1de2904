// Package poll is the one way tests wait for something: check a condition
// every few milliseconds until it holds, and fail the test, with the
// condition's last word on why not, once a deadline has passed. Nothing
// sleeps and hopes.
package poll

import (
	"errors"
	"testing"
	"time"
)

// interval is how often a condition is checked.
const interval = 5 * time.Millisecond

// Until calls cond until it returns nil, and fails t with cond's last
// error once within has passed.
func Until(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not met within %s: %v", within, err)
		}
		<-tick.C
	}
}

// True is Until for a condition that says only whether it holds; what
// describes the condition for the failure message.
func True(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	Until(t, within, func() error {
		if cond() {
			return nil
		}
		return errors.New(what)
	})
}
