package ingest

import (
	"flag"
	"fmt"
)

// Flag names, also quoted in the errors that tell an operator what to raise.
const (
	flagDisableConsistencyCheck = "push.disable-consistency-check"
	flagMaxBodyBytes            = "push.max-body-bytes"
)

// DefaultMaxBodyBytes is the default of --push.max-body-bytes: 16 MiB after
// decompression. A 40-series node push is a few KiB and client_golang's
// default registry about 6 KiB, so this is three orders of magnitude of
// headroom, while a single push (or a gzip bomb) can no longer make a peer
// buffer and decode an unbounded body; decoded families take several times
// their wire size.
const DefaultMaxBodyBytes = 16 << 20

// Config configures the ingester.
type Config struct {
	// DisableConsistencyCheck only changes the success status to 202, as
	// with the Pushgateway; the O(push) check always runs (docs/compat.md).
	DisableConsistencyCheck bool
	// MaxBodyBytes bounds a push body after decompression; 0 means no limit.
	MaxBodyBytes int64
}

// RegisterFlags registers the ingester's flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.DisableConsistencyCheck, flagDisableConsistencyCheck, false,
		"Answer successful pushes with 202 instead of 200, as the Pushgateway does with this flag. Pushes are still checked for consistency.")
	fs.Int64Var(&c.MaxBodyBytes, flagMaxBodyBytes, DefaultMaxBodyBytes,
		"Maximum size of a push body after decompression, in bytes; larger pushes get 413. 0 means no limit.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("--%s must be 0 (no limit) or positive, got %d", flagMaxBodyBytes, c.MaxBodyBytes)
	}
	return nil
}
