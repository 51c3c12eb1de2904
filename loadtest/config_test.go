package loadtest

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no nodes", func(c *Config) { c.Nodes = 0 }, "-nodes"},
		{"too few series", func(c *Config) { c.Series = 5 }, "-series must be at least 14"},
		{"jitter as long as interval", func(c *Config) { c.Jitter = c.Interval }, "-jitter"},
		{"no timeout", func(c *Config) { c.Timeout = 0 }, "-timeout"},
		{"ttl shorter than interval", func(c *Config) { c.TTL = 5 * time.Second }, "-ttl must exceed"},
		{"churn everything", func(c *Config) { c.Churn = 1 }, "-churn"},
		{"sd and scrape urls", func(c *Config) { c.SDURL, c.ScrapeURLs = "http://sd", []string{"http://a/metrics"} }, "exclude"},
		{"negative check wait", func(c *Config) { c.CheckWait = -time.Second }, "-check-wait must not be negative"},
		{"restart without kill", func(c *Config) { c.RestartAfter = time.Second }, "-restart-after needs -kill-peer-after"},
		{"kill one peer", func(c *Config) { c.KillAfter, c.Spawn = time.Second, 1 }, "-spawn 2 or more"},
		{"kill in closed mode", func(c *Config) { c.KillAfter, c.Spawn, c.Mode = time.Second, 3, ModeClosed }, "-mode=fleet"},
		{"kill a peer not spawned", func(c *Config) { c.KillAfter, c.Spawn, c.KillPeer = time.Second, 3, 3 }, "-kill-peer must name a spawned peer, 0 to 2"},
		{"kill beside the pushgateway", func(c *Config) { c.KillAfter, c.Spawn, c.SpawnPushgateway = time.Second, 3, true }, "exclude"},
		{"restart after the end", func(c *Config) { c.KillAfter, c.Spawn, c.RestartAfter = 30*time.Second, 3, 30*time.Second }, "within -duration"},
		{"kill and restart", func(c *Config) { c.KillAfter, c.Spawn, c.RestartAfter = 20*time.Second, 3, 20*time.Second }, ""},
		{"closed by count alone is fine", func(c *Config) { c.Mode, c.Duration, c.Count = ModeClosed, 0, 10 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{
		"-mode=closed", "-url=http://a:1, http://b:2", "-groups=7", "-format=text", "-method=post", "-ttl=1m",
	}))
	require.Equal(t, ModeClosed, cfg.Mode)
	require.Equal(t, []string{"http://a:1", "http://b:2"}, cfg.URLs)
	require.Equal(t, 7, cfg.Nodes)
	require.Equal(t, FormatText, cfg.Format)
	require.Equal(t, MethodPost, cfg.Method)
	require.Equal(t, time.Minute, cfg.TTL)

	require.Error(t, fs.Parse([]string{"-mode=burst"}))
}
