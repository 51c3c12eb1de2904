package main

import (
	"bytes"
	"mime"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// omStrictParse is a Python program that parses stdin with
// prometheus_client's OpenMetrics parser, which rejects clashing names,
// metadata after samples and a missing "# EOF", and prints the number of
// families.
const omStrictParse = `
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
print(len(list(text_string_to_metric_families(sys.stdin.read()))))
`

// omPushText has the shapes that broke the OpenMetrics exposition: a
// counter N_total beside a gauge N_created, a counter without _total, and
// the gateway's own go_memstats_alloc_bytes beside
// go_memstats_alloc_bytes_total.
const omPushText = `# TYPE py_bytes_total counter
py_bytes_total 3
# TYPE py_bytes_created gauge
py_bytes_created 5
# TYPE plain counter
plain 5
# HELP om_latency A histogram.
# TYPE om_latency histogram
om_latency_bucket{le="0.1"} 1
om_latency_bucket{le="+Inf"} 4
om_latency_sum 2.5
om_latency_count 4
# TYPE om_rpc summary
om_rpc{quantile="0.5"} 0.2
om_rpc_sum 3
om_rpc_count 9
# TYPE om_untyped untyped
om_untyped{q="a \"quoted\" \\ value"} 3
`

// TestOpenMetricsStrictParser serves OpenMetrics (only accepted, and
// preferred by --web.prefer-openmetrics) in the version asked for, and
// every answer passes Python prometheus_client's strict parser.
func TestOpenMetricsStrictParser(t *testing.T) {
	requirePythonClient(t)
	t.Parallel()
	g := startPushring(t, "--web.prefer-openmetrics", "--push.enable-utf8-names")
	st, body := g.do(t, http.MethodPut, "/metrics/job/om/instance/a", nil, []byte(omPushText))
	require.Equal(t, http.StatusOK, st, body)
	st, body = g.do(t, http.MethodPut, "/metrics/job/om/instance/b", hdrs("Content-Type", ctProto), rawProtoBody(t, diffProtoFamilies()...))
	require.Equal(t, http.StatusOK, st, body)
	st, body = g.do(t, http.MethodPut, "/metrics/job/om/instance/c", nil, []byte(`{"om.utf8_total", "la.bel"="x"} 1`+"\n"))
	require.Equal(t, http.StatusOK, st, body)

	for _, c := range []struct{ accept, version string }{
		{"application/openmetrics-text;version=1.0.0", "1.0.0"},
		{"application/openmetrics-text;version=0.0.1", "0.0.1"},
		{"application/openmetrics-text", "0.0.1"},
		{acceptPrometheus2, "1.0.0"},
	} {
		r := g.doResp(t, http.MethodGet, "/metrics", hdrs("Accept", c.accept), nil)
		require.Equal(t, http.StatusOK, r.status)
		mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		require.NoError(t, err)
		require.Equal(t, "application/openmetrics-text", mt, c.accept)
		require.Equal(t, c.version, params["version"], c.accept)
		require.Equal(t, "underscores", params["escaping"], c.accept)
		require.Contains(t, r.body, "om_utf8_total{", "UTF-8 names escaped")

		cmd := exec.Command(pythonBin, "-c", omStrictParse)
		cmd.Stdin = strings.NewReader(r.body)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		require.NoError(t, cmd.Run(), "%s: the strict parser refused the exposition: %s\n%s", c.accept, stderr.String(), tail(r.body, 3000))
		require.NotEqual(t, "0", strings.TrimSpace(out.String()))
	}
}

// acceptPrometheus2 is the Accept header of Prometheus 2.42's scrapes.
const acceptPrometheus2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.25"
