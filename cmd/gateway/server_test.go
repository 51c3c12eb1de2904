package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"
)

// Every limit of the built http.Server comes from its flag.
func TestServerLimitsFromFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want serverConfig
	}{
		{"defaults", nil, serverConfig{
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			WriteTimeout:      time.Minute,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		}},
		{"every flag", []string{
			"--web.read-header-timeout=1s", "--web.read-timeout=2s", "--web.write-timeout=3s",
			"--web.idle-timeout=4s", "--web.max-header-bytes=4096",
		}, serverConfig{
			ReadHeaderTimeout: time.Second,
			ReadTimeout:       2 * time.Second,
			WriteTimeout:      3 * time.Second,
			IdleTimeout:       4 * time.Second,
			MaxHeaderBytes:    4096,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := parse(t, c.args...)
			require.NoError(t, cfg.validate())
			h := http.NotFoundHandler()
			srv := newServer(h, cfg.server, promslog.NewNopLogger())
			require.Equal(t, c.want.ReadHeaderTimeout, srv.ReadHeaderTimeout)
			require.Equal(t, c.want.ReadTimeout, srv.ReadTimeout)
			require.Equal(t, c.want.WriteTimeout, srv.WriteTimeout)
			require.Equal(t, c.want.IdleTimeout, srv.IdleTimeout)
			require.Equal(t, c.want.MaxHeaderBytes, srv.MaxHeaderBytes)
			require.NotNil(t, srv.ErrorLog)
		})
	}
}

// A limit of 0 would switch the bound off in net/http, so it is refused;
// admission control takes 0 (off) but no negative value.
func TestServerLimitsMustBeSet(t *testing.T) {
	cases := []struct {
		arg, err string
	}{
		{"--web.read-header-timeout=0", "invalid --web.read-header-timeout 0s: must be positive"},
		{"--web.read-timeout=0", "invalid --web.read-timeout 0s: must be positive"},
		{"--web.write-timeout=-1s", "invalid --web.write-timeout -1s: must be positive"},
		{"--web.idle-timeout=0s", "invalid --web.idle-timeout 0s: must be positive"},
		{"--web.max-header-bytes=0", "invalid --web.max-header-bytes 0: must be at least 1024"},
		{"--push.max-inflight=-1", "invalid --push.max-inflight -1: must not be negative"},
		{"--push.max-queue-wait=-1ms", "invalid --push.max-queue-wait -1ms: must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.arg, func(t *testing.T) {
			err := run(context.Background(), []string{c.arg}, io.Discard, io.Discard)
			require.ErrorContains(t, err, c.err)
		})
	}
}
