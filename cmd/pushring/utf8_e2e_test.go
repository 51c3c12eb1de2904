package main

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// TestPrometheusKeepsTargetUpAfterInvalidUTF8Help pushes HELP texts that
// are not UTF-8, as text and as protobuf, to a peer that Debian's
// Prometheus scrapes. Both get 400 naming the field, and Prometheus keeps
// scraping the peer: before, the push was stored and Prometheus marked the
// whole peer down ("help text is not a valid utf8 string").
func TestPrometheusKeepsTargetUpAfterInvalidUTF8Help(t *testing.T) {
	requireTool(t, prometheusBin)
	t.Parallel()
	g := startPushring(t)
	st, body := g.do(t, http.MethodPut, "/metrics/job/fine", nil, []byte("# HELP utf8_fine A fine gauge.\n# TYPE utf8_fine gauge\nutf8_fine 7\n"))
	require.Equal(t, http.StatusOK, st, body)
	prom := startPrometheusWith(t, prometheusBin, prometheusConfig(g.base+"/api/v1/cluster/targets"))

	bad := &dto.MetricFamily{Name: proto.String("utf8_bad"), Help: proto.String("bad \xff help"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}
	for _, push := range []struct {
		name string
		hdr  http.Header
		body []byte
	}{
		{"text", nil, []byte("# HELP utf8_bad bad \xff help\n# TYPE utf8_bad gauge\nutf8_bad 1\n")},
		{"protobuf", hdrs("Content-Type", ctProto), protoBody(t, bad)},
	} {
		st, body := g.do(t, http.MethodPut, "/metrics/job/bad", push.hdr, push.body)
		require.Equal(t, http.StatusBadRequest, st, push.name)
		require.Contains(t, body, `metric family "utf8_bad" has a HELP text that is not valid UTF-8`, push.name)
	}
	after := float64(time.Now().Unix())

	// A scrape that started after the refused pushes finds the target up
	// and the fine group in it.
	eventually(t, promConvergeTimeout, func() error {
		up, err := prom.query(`up{job="pushring"}`)
		if err != nil {
			return err
		}
		if len(up) != 1 || up[0].Value != 1 {
			return fmt.Errorf("up = %v, want one target up", up)
		}
		ts, err := prom.query(`timestamp(utf8_fine{job="fine"})`)
		if err != nil {
			return err
		}
		if len(ts) != 1 || ts[0].Value < after+1 {
			return fmt.Errorf("no scrape of utf8_fine since %s yet: %v", strconv.FormatFloat(after, 'f', 0, 64), ts)
		}
		return nil
	})
}
