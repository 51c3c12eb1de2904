// Package flagcheck checks the values of duration flags the same way in
// every package, so an operator reads one message style whichever flag is
// wrong.
package flagcheck

import (
	"errors"
	"fmt"
	"time"
)

// Duration is one duration flag to check.
type Duration struct {
	// Flag is the flag's name without dashes, e.g. "cluster.forward-timeout".
	Flag  string
	Value time.Duration
	// ZeroOK allows 0, which switches the flag's behaviour off; otherwise
	// the value must be positive.
	ZeroOK bool
}

// Durations returns an error naming every flag whose value is out of
// range, or nil.
func Durations(ds ...Duration) error {
	var errs []error
	for _, d := range ds {
		switch {
		case d.ZeroOK && d.Value < 0:
			errs = append(errs, fmt.Errorf("--%s must not be negative, got %s", d.Flag, d.Value))
		case !d.ZeroOK && d.Value <= 0:
			errs = append(errs, fmt.Errorf("--%s must be positive, got %s", d.Flag, d.Value))
		}
	}
	return errors.Join(errs...)
}
