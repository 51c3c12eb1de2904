package api

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The route prefix follows the Pushgateway's computeRoutePrefix: the
// route prefix flag, else the path of the external URL.
func TestPrefix(t *testing.T) {
	cases := []struct {
		name, routePrefix, externalURL, want string
	}{
		{"defaults", "", "", ""},
		{"root prefix", "/", "", ""},
		{"prefix", "/pg", "", "/pg"},
		{"one trailing slash removed", "/pg/", "", "/pg"},
		{"leading slash added", "pg", "", "/pg"},
		{"nested", "/a/b/", "", "/a/b"},
		{"external path", "", "http://example.org/gw/", "/gw"},
		{"external root", "", "http://example.org/", ""},
		{"external without path", "", "http://example.org", ""},
		{"prefix wins over external", "/pg", "http://example.org/gw", "/pg"},
		{"root prefix wins over external", "/", "http://example.org/gw", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{TelemetryPath: "/metrics", MaxInflight: 1, RoutePrefix: c.routePrefix, ExternalURL: c.externalURL}
			require.NoError(t, cfg.Validate())
			got, err := cfg.Prefix()
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestExternalPrefix(t *testing.T) {
	cfg := Config{RoutePrefix: "/internal", ExternalURL: "https://example.org/public/"}
	p, err := cfg.ExternalPrefix()
	require.NoError(t, err)
	require.Equal(t, "/public", p)
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"relative telemetry path", Config{TelemetryPath: "metrics", MaxInflight: 1}, "web.telemetry-path"},
		{"pattern in telemetry path", Config{TelemetryPath: "/{x}", MaxInflight: 1}, "web.telemetry-path"},
		{"bad external url", Config{TelemetryPath: "/metrics", MaxInflight: 1, ExternalURL: "http://[::1"}, "web.external-url"},
		{"double slash prefix", Config{TelemetryPath: "/metrics", MaxInflight: 1, RoutePrefix: "//"}, "route prefix"},
		{"unclean prefix", Config{TelemetryPath: "/metrics", MaxInflight: 1, RoutePrefix: "/a/../b"}, "route prefix"},
		{"negative push slots", Config{TelemetryPath: "/metrics", MaxInflight: -1}, "--push.max-inflight -1: must not be negative"},
		{"negative queue wait", Config{TelemetryPath: "/metrics", MaxInflight: 1, MaxQueueWait: -time.Second}, "--push.max-queue-wait must not be negative, got -1s"},
		{"negative body timeout", Config{TelemetryPath: "/metrics", MaxInflight: 1, BodyTimeout: -time.Second}, "--push.body-timeout must not be negative, got -1s"},
		{"negative body rate", Config{TelemetryPath: "/metrics", MaxInflight: 1, MinBodyRate: -1}, "--push.min-body-rate -1: must not be negative"},
		{"budget below four bodies", Config{TelemetryPath: "/metrics", MaxInflight: 1, MaxBodyBytes: 1000, MemoryBudget: 3999},
			"--push.memory-budget-bytes 3999: must be 0 (automatic) or at least 4000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorContains(t, c.cfg.Validate(), c.err)
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	require.Equal(t, "/metrics", cfg.TelemetryPath, "the Pushgateway's default")
	require.Equal(t, 64, cfg.MaxInflight)
	require.Equal(t, 250*time.Millisecond, cfg.MaxQueueWait)
	require.NoError(t, cfg.Validate(), "the defaults are valid")

	require.NoError(t, fs.Parse([]string{
		"--web.telemetry-path=/m", "--web.external-url=http://h/x", "--web.route-prefix=/p",
		"--web.enable-lifecycle", "--web.enable-admin-api",
		"--push.max-inflight=8", "--push.max-queue-wait=1s",
		"--push.body-timeout=3s", "--push.min-body-rate=10", "--push.memory-budget-bytes=1000",
	}))
	require.Equal(t, Config{TelemetryPath: "/m", ExternalURL: "http://h/x", RoutePrefix: "/p",
		EnableLifecycle: true, EnableAdminAPI: true, MaxInflight: 8, MaxQueueWait: time.Second,
		BodyTimeout: 3 * time.Second, MinBodyRate: 10, MemoryBudget: 1000}, cfg)
}
