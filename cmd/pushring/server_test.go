package main

import (
	"context"
	"io"
	"net/http"
	"strings"
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
		{"--web.read-header-timeout=0", "--web.read-header-timeout must be positive, got 0s"},
		{"--web.read-timeout=0", "--web.read-timeout must be positive, got 0s"},
		{"--web.write-timeout=-1s", "--web.write-timeout must be positive, got -1s"},
		{"--web.idle-timeout=0s", "--web.idle-timeout must be positive, got 0s"},
		{"--web.max-header-bytes=0", "invalid --web.max-header-bytes 0: must be at least 1024"},
		{"--push.max-inflight=-1", "invalid --push.max-inflight -1: must not be negative"},
		{"--push.max-queue-wait=-1ms", "--push.max-queue-wait must not be negative, got -1ms"},
	}
	for _, c := range cases {
		t.Run(c.arg, func(t *testing.T) {
			err := run(context.Background(), []string{c.arg}, io.Discard, io.Discard)
			require.ErrorContains(t, err, c.err)
		})
	}
}

// TestServesH2C pushes and scrapes over HTTP/2 without TLS (prior
// knowledge), which the server once dropped without an answer.
func TestServesH2C(t *testing.T) {
	gw := start(t)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protocols}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	resp, err := client.Post("http://"+gw.addr+"/metrics/job/h2c", "text/plain", strings.NewReader("h2c_value 3\n"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 2, resp.ProtoMajor, "answered over HTTP/2")

	resp, err = client.Get("http://" + gw.addr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 2, resp.ProtoMajor)
	require.Contains(t, string(body), `h2c_value{instance="",job="h2c"} 3`)
}
