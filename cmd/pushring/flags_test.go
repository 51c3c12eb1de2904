package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, args ...string) (*config, *flag.FlagSet) {
	t.Helper()
	var cfg config
	fs := newFlagSet(&cfg)
	require.NoError(t, fs.Parse(args))
	return &cfg, fs
}

func TestDefaults(t *testing.T) {
	cfg, fs := parse(t)
	require.NoError(t, cfg.validate())
	host, err := os.Hostname()
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"cluster.advertise-address":      "",
		"cluster.drain-timeout":          "20s",
		"cluster.fanout-timeout":         "5s",
		"cluster.forward-timeout":        "2s",
		"cluster.gossip-key-file":        "",
		"cluster.replication-factor":     "2",
		"cluster.replication-timeout":    "1s",
		"cluster.tombstone-ttl":          "24h0m0s",
		"cluster.grpc-listen-address":    ":9092",
		"cluster.handoff-timeout":        "10s",
		"cluster.label":                  "",
		"cluster.join-timeout":           "30s",
		"cluster.leave-timeout":          "5s",
		"cluster.listen-address":         "",
		"cluster.peer":                   "",
		"cluster.peer-name":              host,
		"cluster.rejoin-interval":        "30s",
		"cluster.settle-timeout":         "5s",
		"cluster.tls-config":             "",
		"log.format":                     "logfmt",
		"log.level":                      "info",
		"persistence.file":               "",
		"persistence.interval":           "5m0s",
		"push.body-timeout":              "30s",
		"push.memory-budget-bytes":       "0",
		"push.min-body-rate":             "1024",
		"store.max-bytes":                "268435456",
		"store.max-failure-groups":       "10000",
		"store.max-render-cache-bytes":   "67108864",
		"web.enable-pprof":               "false",
		"push.disable-consistency-check": "false",
		"push.enable-utf8-names":         "false",
		"push.max-body-bytes":            "16777216",
		"push.max-inflight":              "64",
		"push.max-label-name-length":     "1024",
		"push.max-label-value-length":    "4096",
		"push.max-labels-per-series":     "64",
		"push.max-metric-name-length":    "1024",
		"push.max-queue-wait":            "250ms",
		"push.max-series":                "50000",
		"push.ttl":                       "0s",
		"metric.timetolive":              "0s",
		"web.prefer-openmetrics":         "false",
		"push.ttl-rules-file":            "",
		"runtime.gogc":                   "50",
		"runtime.gc-min-headroom-bytes":  "16777216",
		"store.max-groups":               "200000",
		"store.max-series":               "2000000",
		"web.config.file":                "",
		"web.enable-admin-api":           "false",
		"web.enable-lifecycle":           "false",
		"web.external-url":               "",
		"web.idle-timeout":               "2m0s",
		"web.listen-address":             ":9091",
		"web.local-assets":               "",
		"web.max-header-bytes":           "65536",
		"web.read-header-timeout":        "10s",
		"web.read-timeout":               "1m0s",
		"web.route-prefix":               "",
		"web.systemd-socket":             "false",
		"web.telemetry-path":             "/metrics",
		"web.write-timeout":              "1m0s",

		// memberlist's timings
		"cluster.gossip-interval":                  "200ms",
		"cluster.probe-interval":                   "500ms",
		"cluster.probe-timeout":                    "200ms",
		"cluster.suspicion-multiplier":             "4",
		"cluster.suspicion-max-timeout-multiplier": "6",
	}, flagValues(fs), "the Pushgateway's flags and defaults, plus ours")
}

// An operator's Pushgateway command line (Debian's unit adds
// --web.local-assets) must start pushring unchanged.
func TestPushgatewayCommandLine(t *testing.T) {
	cfg, fs := parse(t,
		"--web.listen-address=:9091",
		"--persistence.file=/x",
		"--persistence.interval=5m",
		"--web.enable-lifecycle",
		"--no-web.enable-admin-api",
		"--log.level=debug",
		"--log.format=json",
		"--web.local-assets=/usr/share/prometheus/pushgateway",
	)
	require.NoError(t, cfg.validate())
	require.Equal(t, []string{":9091"}, cfg.listen.values)
	require.Equal(t, "/x", cfg.persist.File)
	require.Equal(t, 5*time.Minute, cfg.persist.Interval)
	require.True(t, cfg.api.EnableLifecycle)
	require.False(t, cfg.api.EnableAdminAPI)
	require.Equal(t, "debug", cfg.logLevel.String())
	require.Equal(t, "json", cfg.logFormat.String())
	require.Equal(t, "/usr/share/prometheus/pushgateway", cfg.localAssets)
	require.Equal(t, "json", flagValues(fs)["log.format"])
}

func TestFlagForms(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, cfg *config)
	}{
		{"repeated listen address", []string{"--web.listen-address=:1", "--web.listen-address", ":2"}, func(t *testing.T, cfg *config) {
			require.Equal(t, []string{":1", ":2"}, cfg.listen.values)
			require.Equal(t, ":1,:2", cfg.listen.String())
		}},
		{"single dash", []string{"-web.enable-admin-api", "-web.route-prefix=/pg"}, func(t *testing.T, cfg *config) {
			require.True(t, cfg.api.EnableAdminAPI)
			require.Equal(t, "/pg", cfg.api.RoutePrefix)
		}},
		{"ttl in days", []string{"--push.ttl=2d"}, func(t *testing.T, cfg *config) {
			require.Equal(t, 48*time.Hour, cfg.ingest.TTL)
		}},
		{"ttl alias of the TTL forks, in weeks", []string{"--metric.timetolive=1w"}, func(t *testing.T, cfg *config) {
			require.Equal(t, 7*24*time.Hour, cfg.ingest.TTL)
		}},
		{"ttl in Go syntax", []string{"--metric.timetolive", "1h30m"}, func(t *testing.T, cfg *config) {
			require.Equal(t, 90*time.Minute, cfg.ingest.TTL)
		}},
		{"explicit bool values", []string{"--web.enable-lifecycle=true", "--push.disable-consistency-check=false"}, func(t *testing.T, cfg *config) {
			require.True(t, cfg.api.EnableLifecycle)
			require.False(t, cfg.ingest.DisableConsistencyCheck)
		}},
		{"negation wins when last", []string{"--web.enable-lifecycle", "--no-web.enable-lifecycle"}, func(t *testing.T, cfg *config) {
			require.False(t, cfg.api.EnableLifecycle)
		}},
		{"negation of a negation", []string{"--no-push.disable-consistency-check=false"}, func(t *testing.T, cfg *config) {
			require.True(t, cfg.ingest.DisableConsistencyCheck)
		}},
		{"every bool has a negation", []string{"--no-web.systemd-socket", "--no-push.enable-utf8-names", "--no-version"}, func(t *testing.T, cfg *config) {
			require.False(t, cfg.systemdSocket)
			require.False(t, cfg.ingest.UTF8Names)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := parse(t, c.args...)
			c.check(t, cfg)
		})
	}
}

// The route prefix follows the Pushgateway's rules: the route prefix flag,
// else the path of the external URL.
func TestRoutePrefixFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--web.route-prefix=/"}, ""},
		{[]string{"--web.route-prefix=/pg/"}, "/pg"},
		{[]string{"--web.route-prefix=pg"}, "/pg"},
		{[]string{"--web.external-url=http://example.org/gw/"}, "/gw"},
		{[]string{"--web.external-url=http://example.org"}, ""},
		{[]string{"--web.external-url=http://example.org/gw", "--web.route-prefix=/internal"}, "/internal"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			cfg, _ := parse(t, c.args...)
			require.NoError(t, cfg.validate())
			got, err := cfg.api.Prefix()
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestInvalidCommandLines(t *testing.T) {
	cases := []struct {
		name string
		args []string
		err  string
	}{
		{"unknown flag", []string{"--web.nope"}, "unknown flag --web.nope; try --help"},
		{"missing value", []string{"--push.ttl"}, "--push.ttl needs a value; try --help"},
		{"bad value", []string{"--push.ttl=soon"}, `invalid value "soon" for --push.ttl: `},
		{"bad boolean", []string{"--web.enable-lifecycle=maybe"}, `invalid value "maybe" for --web.enable-lifecycle: `},
		{"positional argument", []string{"serve"}, `unexpected argument "serve"`},
		{"bad log level", []string{"--log.level=loud"}, "unrecognized log level"},
		{"bad log format", []string{"--log.format=xml"}, "unrecognized log format"},
		{"bad duration", []string{"--persistence.interval=often"}, "persistence.interval"},
		{"negative interval", []string{"--persistence.interval=-1s"}, "persistence.interval"},
		{"bad external url", []string{"--web.external-url=http://[::1"}, "web.external-url"},
		{"vsock", []string{"--web.listen-address=vsock://:9100"}, "vsock"},
		{"missing web config", []string{"--web.config.file=/nonexistent/web.yml"}, "web.config.file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), c.args, &stdout, &stderr)
			require.ErrorContains(t, err, c.err)
			require.Empty(t, stdout.String())
		})
	}
}

func TestVersionAndHelpGoToStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"--version"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "pushring, version")
	require.Contains(t, stdout.String(), "go version:")
	require.Empty(t, stderr.String())

	for _, arg := range []string{"-h", "--help", "-help"} {
		stdout.Reset()
		require.NoError(t, run(context.Background(), []string{arg}, &stdout, &stderr), arg)
		help := stdout.String()
		require.Contains(t, help, "usage: pushring [<flags>]")
		require.Contains(t, help, "  --web.listen-address=ADDRESS\n")
		require.Contains(t, help, "(default: :9091)")
		require.Contains(t, help, "  --[no-]web.enable-lifecycle\n")
		require.Contains(t, help, "  --persistence.interval=INTERVAL\n")
		require.Contains(t, help, "Debian")
		require.NotContains(t, help, "--no-web", "negations are shown as --[no-]name")
		require.Empty(t, stderr.String())
	}
}

// The body deadline replaces the connection's read deadline, so it is held
// to --web.read-timeout.
func TestBodyTimeoutAtMostReadTimeout(t *testing.T) {
	cfg, _ := parse(t, "--web.read-timeout=10s")
	require.NoError(t, cfg.validate())
	require.Equal(t, 10*time.Second, cfg.api.BodyTimeout)
	cfg, _ = parse(t, "--push.body-timeout=5s")
	require.NoError(t, cfg.validate())
	require.Equal(t, 5*time.Second, cfg.api.BodyTimeout)
}
