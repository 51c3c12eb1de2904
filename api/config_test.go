package api

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The route prefix follows the Pushgateway's computeRoutePrefix
// (shared/pushgateway-spec.md §1.6).
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
		{"negative queue wait", Config{TelemetryPath: "/metrics", MaxInflight: 1, MaxQueueWait: -time.Second}, "--push.max-queue-wait -1s: must not be negative"},
		{"negative fan-out timeout", Config{TelemetryPath: "/metrics", MaxInflight: 1, FanoutTimeout: -time.Second}, "--cluster.fanout-timeout -1s: must not be negative"},
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
		"--push.max-inflight=8", "--push.max-queue-wait=1s", "--cluster.fanout-timeout=2s",
	}))
	require.Equal(t, Config{TelemetryPath: "/m", ExternalURL: "http://h/x", RoutePrefix: "/p",
		EnableLifecycle: true, EnableAdminAPI: true, MaxInflight: 8, MaxQueueWait: time.Second, FanoutTimeout: 2 * time.Second}, cfg)
}
