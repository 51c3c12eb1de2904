package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/loadtest"
)

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(`Running 10s test @ http://127.0.0.1:1
  1 threads and 16 connections
  19876 requests in 2.00s, 3.09MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:   9932.92
Transfer/sec:      1.54MB
`)
	require.NoError(t, err)
	require.InDelta(t, 9932.92, r.rate, 0.001)
	require.Equal(t, 5+3+1+2, r.non2xx)
	_, err = parseWrk("wrk: connection refused")
	require.Error(t, err)
}

// The script PUTs the node's body to every group, built once wrk has
// set the Host header.
func TestScript(t *testing.T) {
	c := config{groups: 3, series: 40, workDir: t.TempDir()}
	for _, f := range []loadtest.Format{loadtest.FormatText, loadtest.FormatProtobuf} {
		path, err := c.script(f)
		require.NoError(t, err)
		lua, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Contains(t, string(lua), "init = function(args)")
		require.Contains(t, string(lua), `"/metrics/job/pushbench/instance/edge-"`)
		require.Contains(t, string(lua), "for g = 1, 3 do")
		body, err := os.ReadFile(filepath.Join(c.workDir, "body."+string(f)))
		require.NoError(t, err)
		want, err := loadtest.NodeBody(f, 40, 1)
		require.NoError(t, err)
		if f == loadtest.FormatText {
			require.Equal(t, string(want), string(body))
			continue
		}
		// Protobuf bodies differ in their counters' created timestamps,
		// whose varints may differ in length by a byte each.
		require.InDelta(t, len(want), len(body), 40)
	}
}

func TestFloorAndCPUTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(floor))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/metrics/job/x", "text/plain", strings.NewReader("m 1\n"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	d, err := cpuTime(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, d)
}
