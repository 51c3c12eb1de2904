package ingest

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Flag names, also quoted in the errors that tell an operator what to raise.
const (
	flagDisableConsistencyCheck = "push.disable-consistency-check"
	flagMaxBodyBytes            = "push.max-body-bytes"
	flagTTL                     = "push.ttl"
	// flagTTLAlias is --push.ttl under the name the Pushgateway's TTL forks
	// (and k0s's bundled gateway) use.
	flagTTLAlias            = "metric.timetolive"
	flagTTLRulesFile        = "push.ttl-rules-file"
	flagMaxSeries           = "push.max-series"
	flagMaxLabelsPerSeries  = "push.max-labels-per-series"
	flagMaxLabelNameLength  = "push.max-label-name-length"
	flagMaxLabelValueLength = "push.max-label-value-length"
	flagMaxMetricNameLength = "push.max-metric-name-length"
)

// Defaults of the limits on one push. They are the one place the defaults
// are decided; RegisterFlags and DefaultConfig use them.
const (
	// DefaultMaxBodyBytes is the default of --push.max-body-bytes: 16 MiB
	// after decompression. A 40-series node push is a few KiB and
	// client_golang's default registry about 6 KiB, so this is three orders
	// of magnitude of headroom, while a single push (or a gzip bomb) can no
	// longer make a peer buffer and decode an unbounded body; decoded
	// families take several times their wire size.
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxSeries is the default of --push.max-series. Pushgateway
	// users report single pushes of 15,000 metrics (whole exporters
	// relayed through it), so 50,000 leaves room for them while one push
	// can no longer hold a peer's whole series budget.
	DefaultMaxSeries = 50000
	// DefaultMaxLabelsPerSeries is the default of
	// --push.max-labels-per-series. Real series carry a handful to a few
	// dozen pairs; 64 is far above that and still stops a pusher that
	// turned a map into labels.
	DefaultMaxLabelsPerSeries = 64
	// DefaultMaxLabelNameLength is the default of
	// --push.max-label-name-length, in bytes: generous for any name a human
	// chose, small enough that names cannot carry payloads.
	DefaultMaxLabelNameLength = 1024
	// DefaultMaxLabelValueLength is the default of
	// --push.max-label-value-length, in bytes. Paths, URLs and error texts
	// fit; a log line or a stack trace in a label value does not.
	DefaultMaxLabelValueLength = 4096
	// DefaultMaxMetricNameLength is the default of
	// --push.max-metric-name-length, in bytes, the same bound as for label
	// names.
	DefaultMaxMetricNameLength = 1024
)

// MaxTTL is the longest TTL a header, rule or --push.ttl may set. Anything
// longer is a typo (or an attempt to overflow a deadline), and 0 already
// says "never expires".
const MaxTTL = 10 * 365 * 24 * time.Hour

// Config configures the ingester.
type Config struct {
	// DisableConsistencyCheck only changes the success status to 202, as
	// with the Pushgateway; the O(push) check always runs (docs/compat.md).
	DisableConsistencyCheck bool
	// MaxBodyBytes bounds a push body after decompression; 0 means no limit.
	MaxBodyBytes int64
	// TTL is how long a group lives after its last successful push when
	// neither the Pushring-TTL header nor a rule says otherwise; 0 means
	// forever, the Pushgateway's behaviour.
	TTL time.Duration
	// TTLRulesFile is a YAML file of per-job TTL rules (see rules.go); ""
	// means no rules. It is read by New and again by ReloadRules.
	TTLRulesFile string
	// MaxSeries bounds the series (metrics, in client_model's sense) of
	// one push; 0 means no limit.
	MaxSeries int
	// MaxLabelsPerSeries bounds the label pairs of one series after
	// sanitising, grouping labels and instance="" included; 0 means no
	// limit.
	MaxLabelsPerSeries int
	// MaxLabelNameLength bounds a label name, in bytes; 0 means no limit.
	MaxLabelNameLength int
	// MaxLabelValueLength bounds a label value, in bytes; 0 means no limit.
	MaxLabelValueLength int
	// MaxMetricNameLength bounds a metric family name, in bytes; 0 means no
	// limit.
	MaxMetricNameLength int
	// UTF8Names accepts UTF-8 metric and label names in text bodies
	// (quoted) and U__-escaped label names in the URL, as the Pushgateway
	// does with --push.enable-utf8-names. Protobuf bodies may carry UTF-8
	// names either way, as with the Pushgateway.
	UTF8Names bool
}

// DefaultConfig returns the configuration the flags default to.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:        DefaultMaxBodyBytes,
		MaxSeries:           DefaultMaxSeries,
		MaxLabelsPerSeries:  DefaultMaxLabelsPerSeries,
		MaxLabelNameLength:  DefaultMaxLabelNameLength,
		MaxLabelValueLength: DefaultMaxLabelValueLength,
		MaxMetricNameLength: DefaultMaxMetricNameLength,
	}
}

// flagUTF8Names is the Pushgateway's flag.
const flagUTF8Names = "push.enable-utf8-names"

// RegisterFlags registers the ingester's flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.BoolVar(&c.DisableConsistencyCheck, flagDisableConsistencyCheck, d.DisableConsistencyCheck,
		"Answer successful pushes with 202 instead of 200, as the Pushgateway does with this flag. Pushes are still checked for consistency.")
	fs.Int64Var(&c.MaxBodyBytes, flagMaxBodyBytes, d.MaxBodyBytes,
		"Maximum size of a push body after decompression, in bytes; larger pushes get 413. 0 means no limit.")
	c.TTL = d.TTL
	fs.Var(ttlFlag{&c.TTL}, flagTTL,
		"How long a group lives after its last successful push, unless the Pushring-TTL header or a rule of --push.ttl-rules-file says otherwise, e.g. 90s, 1h30m, 2d or 1w. 0 means forever, as with the Pushgateway.")
	fs.Var(ttlFlag{&c.TTL}, flagTTLAlias, "Alias of --"+flagTTL+", the name the Pushgateway's TTL forks use.")
	fs.StringVar(&c.TTLRulesFile, flagTTLRulesFile, d.TTLRulesFile,
		"YAML file of per-job TTL rules; the first rule matching a group's job and labels sets its TTL. Reloaded on SIGHUP and POST /-/reload.")
	fs.IntVar(&c.MaxSeries, flagMaxSeries, d.MaxSeries,
		"Maximum number of series (sample lines, as Prometheus counts them: a histogram's buckets, _sum and _count each count) in one push; larger pushes get 413. 0 means no limit.")
	fs.IntVar(&c.MaxLabelsPerSeries, flagMaxLabelsPerSeries, d.MaxLabelsPerSeries,
		"Maximum number of label pairs of a pushed series, grouping labels included; pushes with more get 400. 0 means no limit.")
	fs.IntVar(&c.MaxLabelNameLength, flagMaxLabelNameLength, d.MaxLabelNameLength,
		"Maximum length of a label name in a push or its URL, in bytes; longer ones get 400. 0 means no limit.")
	fs.IntVar(&c.MaxLabelValueLength, flagMaxLabelValueLength, d.MaxLabelValueLength,
		"Maximum length of a label value in a push or its URL, in bytes; longer ones get 400. 0 means no limit.")
	fs.IntVar(&c.MaxMetricNameLength, flagMaxMetricNameLength, d.MaxMetricNameLength,
		"Maximum length of a metric name in a push, in bytes; longer ones get 400. 0 means no limit.")
	fs.BoolVar(&c.UTF8Names, flagUTF8Names, d.UTF8Names,
		"Allow UTF-8 characters in metric and label names of text pushes (quoted) and U__-escaped label names in the push URL. Protobuf pushes may carry UTF-8 names without it, as with the Pushgateway.")
}

// Validate checks the configuration. It does not read the rules file; New
// does.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("--%s must be 0 (no limit) or positive, got %d", flagMaxBodyBytes, c.MaxBodyBytes))
	}
	for _, l := range []struct {
		flag  string
		value int
	}{
		{flagMaxSeries, c.MaxSeries},
		{flagMaxLabelsPerSeries, c.MaxLabelsPerSeries},
		{flagMaxLabelNameLength, c.MaxLabelNameLength},
		{flagMaxLabelValueLength, c.MaxLabelValueLength},
		{flagMaxMetricNameLength, c.MaxMetricNameLength},
	} {
		if l.value < 0 {
			errs = append(errs, fmt.Errorf("--%s must be 0 (no limit) or positive, got %d", l.flag, l.value))
		}
	}
	if err := checkTTL(c.TTL); err != nil {
		errs = append(errs, fmt.Errorf("--%s=%s: %w", flagTTL, c.TTL, err))
	}
	return errors.Join(errs...)
}

// ttlFlag is a TTL flag: a duration in Go's syntax or Prometheus' (with d
// and w units), see parseDuration.
type ttlFlag struct{ d *time.Duration }

func (f ttlFlag) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f ttlFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}
