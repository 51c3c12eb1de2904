package ingest

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigFlags(t *testing.T) {
	with := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		args    []string
		want    Config
		wantErr string
	}{
		{"defaults", nil, Config{
			MaxBodyBytes: 16 << 20, MaxSeries: 50000, MaxLabelsPerSeries: 64,
			MaxLabelNameLength: 1024, MaxLabelValueLength: 4096, MaxMetricNameLength: 1024,
		}, ""},
		{"disable check", []string{"--push.disable-consistency-check"}, with(func(c *Config) { c.DisableConsistencyCheck = true }), ""},
		{"every limit off", []string{
			"--push.max-body-bytes=0", "--push.max-series=0", "--push.max-labels-per-series=0",
			"--push.max-label-name-length=0", "--push.max-label-value-length=0", "--push.max-metric-name-length=0",
		}, Config{}, ""},
		{"ttl and rules", []string{"--push.ttl=5m", "--push.ttl-rules-file=/etc/pushring/ttl.yml"},
			with(func(c *Config) { c.TTL, c.TTLRulesFile = 5*time.Minute, "/etc/pushring/ttl.yml" }), ""},
		{"ttl at the maximum", []string{"--push.ttl=87600h"}, with(func(c *Config) { c.TTL = MaxTTL }), ""},
		{"negative body limit", []string{"--push.max-body-bytes=-1"}, with(func(c *Config) { c.MaxBodyBytes = -1 }),
			"--push.max-body-bytes must be 0 (no limit) or positive, got -1"},
		{"negative series", []string{"--push.max-series=-2"}, with(func(c *Config) { c.MaxSeries = -2 }),
			"--push.max-series must be 0 (no limit) or positive, got -2"},
		{"negative labels", []string{"--push.max-labels-per-series=-1"}, with(func(c *Config) { c.MaxLabelsPerSeries = -1 }),
			"--push.max-labels-per-series must be 0 (no limit) or positive, got -1"},
		{"negative name length", []string{"--push.max-label-name-length=-1"}, with(func(c *Config) { c.MaxLabelNameLength = -1 }),
			"--push.max-label-name-length must be 0 (no limit) or positive, got -1"},
		{"negative value length", []string{"--push.max-label-value-length=-1"}, with(func(c *Config) { c.MaxLabelValueLength = -1 }),
			"--push.max-label-value-length must be 0 (no limit) or positive, got -1"},
		{"negative metric name length", []string{"--push.max-metric-name-length=-1"}, with(func(c *Config) { c.MaxMetricNameLength = -1 }),
			"--push.max-metric-name-length must be 0 (no limit) or positive, got -1"},
		{"negative ttl", []string{"--push.ttl=-1s"}, with(func(c *Config) { c.TTL = -time.Second }),
			"--push.ttl=-1s: negative; use 0 for a group that never expires"},
		{"ttl too long", []string{"--push.ttl=87601h"}, with(func(c *Config) { c.TTL = 87601 * time.Hour }),
			"--push.ttl=87601h0m0s: longer than the maximum of 87600h0m0s (10 years); use 0 for a group that never expires"},
		{"every error at once", []string{"--push.max-series=-1", "--push.ttl=-1m"}, with(func(c *Config) { c.MaxSeries, c.TTL = -1, -time.Minute }),
			"--push.max-series must be 0 (no limit) or positive, got -1\n--push.ttl=-1m0s: negative; use 0 for a group that never expires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			require.NoError(t, fs.Parse(tt.args))
			require.Equal(t, tt.want, cfg)
			if tt.wantErr == "" {
				require.NoError(t, cfg.Validate())
			} else {
				require.EqualError(t, cfg.Validate(), tt.wantErr)
			}
		})
	}
}
