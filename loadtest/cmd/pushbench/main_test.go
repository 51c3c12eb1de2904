package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// The script PUTs the node's bodies to every group, built once wrk has
// set the Host header; the bodies have the same series and other values.
func TestScript(t *testing.T) {
	c := config{groups: 3, series: 40, bodies: 2, workDir: t.TempDir()}
	for _, f := range []loadtest.Format{loadtest.FormatText, loadtest.FormatProtobuf} {
		path, err := c.script(f)
		require.NoError(t, err)
		lua, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Contains(t, string(lua), "init = function(args)")
		require.Contains(t, string(lua), `"/metrics/job/pushbench/instance/edge-"`)
		require.Contains(t, string(lua), "local groups = 3\n")
		var bodies [][]byte
		for i := 1; i <= 2; i++ {
			body, err := os.ReadFile(filepath.Join(c.workDir, fmt.Sprintf("body%d.%s", i, f)))
			require.NoError(t, err)
			require.Contains(t, string(lua), fmt.Sprintf("%q", filepath.Join(c.workDir, fmt.Sprintf("body%d.%s", i, f))))
			bodies = append(bodies, body)
		}
		require.NotEqual(t, bodies[0], bodies[1], "the values differ")
		wants, err := loadtest.NodeBodies(f, 40, 1, 1)
		require.NoError(t, err)
		want := wants[0]
		if f == loadtest.FormatText {
			require.Equal(t, string(want), string(bodies[0]))
			require.Equal(t, seriesOf(bodies[0]), seriesOf(bodies[1]), "the series are the same")
			continue
		}
		// Protobuf bodies differ in their counters' created timestamps,
		// whose varints may differ in length by a byte each.
		require.InDelta(t, len(want), len(bodies[0]), 40)
	}
}

// -body-files: a client's body, its values changed in each version, its
// series and comments kept, pushed as text.
func TestScriptBodyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "client.prom")
	require.NoError(t, os.WriteFile(file, []byte("# HELP a An a.\n# TYPE a counter\na{x=\"1 2\"} 1.5\n\nb\t2\n"), 0o644))
	var c config
	require.NoError(t, c.parseFormats("", file))
	require.Equal(t, []loadtest.Format{"client.prom"}, c.formats)
	c.groups, c.bodies, c.workDir = 2, 2, t.TempDir()
	path, err := c.script("client.prom")
	require.NoError(t, err)
	lua, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(lua), `"text/plain; version=0.0.4; charset=utf-8"`)
	for i, want := range []string{
		"# HELP a An a.\n# TYPE a counter\na{x=\"1 2\"} 7\n\nb\t14\n",
		"# HELP a An a.\n# TYPE a counter\na{x=\"1 2\"} 8\n\nb\t15\n",
	} {
		body, err := os.ReadFile(filepath.Join(c.workDir, fmt.Sprintf("body%d.client.prom", i+1)))
		require.NoError(t, err)
		require.Equal(t, want, string(body))
	}
	require.ErrorContains(t, c.parseFormats("text", file+","+file), "two formats")
}

// seriesOf is a text body without its values.
func seriesOf(body []byte) []string {
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if i := strings.LastIndexByte(line, ' '); i >= 0 && !strings.HasPrefix(line, "#") {
			line = line[:i]
		}
		out = append(out, line)
	}
	return out
}

func TestFloorAndCPUTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(floor))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/metrics/job/x", "text/plain", strings.NewReader("m 1\n"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// /proc counts CPU time in clock ticks: work until one is counted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := cpuTime(os.Getpid())
		require.NoError(t, err)
		if d > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no CPU time counted after 10 s of work")
		for i := range 1_000_000 {
			workSink += i
		}
	}
}

// workSink keeps the work of TestFloorAndCPUTime from being optimised away.
var workSink int
