package loadtest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleSummary() Summary {
	return Summary{Runs: []Report{
		{Target: "pushring", Mode: ModeFleet, Groups: 200, SeriesPerGroup: 40, Pushes: 10, Succeeded: 10,
			Latency: Latency{Count: 10, P50MS: 0.4, P99MS: 1.2},
			Errors:  ErrorCounts{StatusCodes: map[string]uint64{}},
			Check:   &CheckReport{Expected: 200, OKGroups: 200, OK: true, Peers: []PeerScrape{{URL: "http://a/metrics"}}}},
		{Target: "pushgateway", Mode: ModeFleet, Groups: 200, SeriesPerGroup: 40, Pushes: 10, Succeeded: 8,
			Errors: ErrorCounts{Total: 2, Status5xx: 2, StatusCodes: map[string]uint64{"503": 2}, Samples: []string{"push answered 503: busy"}},
			Check:  &CheckReport{Expected: 199, OKGroups: 198, Missing: 1, Unacked: 1, Problems: []string{"missing: edge-000007"}}},
	}}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, sampleSummary()))
	out := buf.String()
	for _, want := range []string{"pushring", "pushgateway", "200 × 40", "10/10", "2 (5xx=2)", "PASS", "FAIL",
		"pushgateway error: push answered 503: busy", "pushgateway check: missing: edge-000007"} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "scrape p50", "no run has a scrape section")
	require.Regexp(t, `never acknowledged +0 +1 `, out, "nodes whose every push failed are shown")
}

func TestWriteJSONKeepsItsShape(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, sampleSummary()))
	var decoded struct {
		Runs []map[string]any `json:"runs"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &decoded))
	require.Len(t, decoded.Runs, 2)
	for _, key := range []string{"target", "pushes_per_second", "latency", "errors", "client_goroutines", "check"} {
		require.Contains(t, decoded.Runs[0], key)
	}
	require.Equal(t, float64(1), decoded.Runs[1]["check"].(map[string]any)["missing"])
	require.Equal(t, float64(2), decoded.Runs[1]["errors"].(map[string]any)["status_codes"].(map[string]any)["503"])
}

func TestCountJobSeries(t *testing.T) {
	body := []byte("# TYPE m gauge\nm{instance=\"n1\",job=\"loadtest\"} 1\nm{instance=\"n2\",job=\"other\"} 1\n" +
		"push_time_seconds{instance=\"n1\",job=\"loadtest\"} 1.7e+09\ngo_goroutines 7\n")
	require.Equal(t, 2, countJobSeries(body, "loadtest"))
	require.Equal(t, 0, countJobSeries(nil, "loadtest"))
}
