package main

// Differential test of UTF-8 names against Pushgateway 1.11.5 (built by
// .ci/run from the Go module proxy): every push form with and without
// --push.enable-utf8-names gets the same status, and every escaping scheme
// of the scrape, in text and protobuf, gives the same names and series.

import (
	"bufio"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"
)

// utf8Push is one push form of UTF-8 names.
type utf8Push struct {
	name         string
	path         string
	header       http.Header
	body         []byte
	want, wantU8 int // status without and with --push.enable-utf8-names
}

func utf8Pushes(t *testing.T) []utf8Push {
	pb := rawProtoBody(t, // names as given: protoBody would escape them
		counterFamily("pb.dotted_total", "A protobuf UTF-8 name.", counterMetric(3, "la.bel", "x")),
		gaugeFamily("pb_plain", "A legacy name with a UTF-8 label name.", gaugeMetric(1, "ünï", "y")))
	return []utf8Push{
		{"protobuf names", "/metrics/job/pb", hdrs("Content-Type", ctProto), pb, 200, 200},
		{"quoted text names", "/metrics/job/txt", nil, []byte("# TYPE \"txt.metric\" gauge\n{\"txt.metric\", \"la.bel\"=\"v\"} 1\n"), 400, 200},
		{"quoted text label name", "/metrics/job/txtl", nil, []byte("txt_plain{\"a.b\"=\"v\"} 2\n"), 400, 200},
		{"U__ URL label name", "/metrics/job/url/U__foo_2e_bar/baz", nil, []byte("url_metric 1\n"), 200, 200},
		{"U__ URL label name with base64", "/metrics/job/url64/U__foo_2e_bar@base64/YmF6", nil, []byte("url64_metric 1\n"), 200, 200},
		{"UTF-8 URL label name", "/metrics/job/urlu/%C3%A9t%C3%A9/v", nil, []byte("urlu_metric 1\n"), 400, 200},
		{"reserved URL label name", "/metrics/job/urlr/__x/v", nil, []byte("urlr_metric 1\n"), 400, 400},
	}
}

// escapingScrape is one Accept header of the scrape comparison.
type escapingScrape struct {
	name, accept string
	proto        bool
}

func escapingScrapes() []escapingScrape {
	var out []escapingScrape
	for _, esc := range []string{"", model.AllowUTF8, model.EscapeUnderscores, model.EscapeDots, model.EscapeValues} {
		param, name := "", "no escaping parameter"
		if esc != "" {
			param, name = ";escaping="+esc, esc
		}
		out = append(out,
			escapingScrape{"text " + name, "text/plain;version=0.0.4" + param, false},
			escapingScrape{"protobuf " + name, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited" + param, true})
	}
	// Prometheus 3's default header: the Pushgateway answers text 0.0.4,
	// pushring text 1.0.0 (the entry it matches), both with allow-utf-8.
	return append(out, escapingScrape{"prometheus 3 default",
		"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
		false})
}

// scrapeEscaped scrapes g with accept and returns the escaping its
// Content-Type names and the pushed families.
func scrapeEscaped(t *testing.T, g *gw, sc escapingScrape) (string, map[string]scrapeFamily) {
	t.Helper()
	r := g.doResp(t, http.MethodGet, "/metrics", hdrs("Accept", sc.accept), nil)
	require.Equal(t, http.StatusOK, r.status, "%s %s: %s", g.kind, sc.name, r.body)
	_, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	require.NoError(t, err)
	if !sc.proto {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(r.body))
		require.NoError(t, err, "%s %s: %s", g.kind, sc.name, tail(r.body, 2000))
		return params["escaping"], pushedView(mfs)
	}
	mfs := map[string]*dto.MetricFamily{}
	rd := bufio.NewReader(strings.NewReader(r.body))
	for {
		mf := &dto.MetricFamily{}
		if err := protodelim.UnmarshalFrom(rd, mf); err != nil {
			require.ErrorIs(t, err, io.EOF, g.kind)
			break
		}
		mfs[mf.GetName()] = mf
	}
	return params["escaping"], pushedView(mfs)
}

// TestCompatUTF8Names runs every UTF-8 push form against Pushgateway 1.11.5
// and pushring, with and without --push.enable-utf8-names, and compares
// the statuses, the JSON API (names as pushed) and the scrapes under every
// escaping scheme.
func TestCompatUTF8Names(t *testing.T) {
	pgBin := requireEnvTool(t, envPushgateway1115)
	for _, flags := range [][]string{nil, {"--push.enable-utf8-names"}} {
		t.Run(strings.Join(append([]string{"flags"}, flags...), " "), func(t *testing.T) {
			t.Parallel()
			gs := []*gw{startGateway(t, kindPushgateway, pgBin, flags), startPushring(t, flags...)}
			for _, p := range utf8Pushes(t) {
				want := p.want
				if len(flags) > 0 {
					want = p.wantU8
				}
				var rs []response
				for _, g := range gs {
					r := g.doResp(t, http.MethodPut, p.path, p.header, p.body)
					require.Equal(t, want, r.status, "%s on %s: %s", p.name, g.kind, r.body)
					rs = append(rs, r)
				}
				compareResponses(t, p.name, cmpStatusOnly, rs[0], rs[1])
			}
			for _, g := range gs {
				g.barrier(t)
			}
			require.Equal(t, gs[0].fetchAPI(t), gs[1].fetchAPI(t), "/api/v1/metrics: Pushgateway 1.11.5 (expected) vs pushring (actual)")
			for _, sc := range escapingScrapes() {
				escPG, pg := scrapeEscaped(t, gs[0], sc)
				escPR, pr := scrapeEscaped(t, gs[1], sc)
				require.Equal(t, escPG, escPR, "%s: escaping named in the Content-Type", sc.name)
				require.Equal(t, pg, pr, "%s: Pushgateway 1.11.5 (expected) vs pushring (actual)", sc.name)
				if escPR != model.AllowUTF8 {
					for name, f := range pr {
						require.True(t, model.LegacyValidation.IsValidMetricName(name), "%s: %q", sc.name, name)
						for _, s := range f.Series {
							require.NotContains(t, s, "ü", "%s: a UTF-8 label name reached a scraper that did not ask for it", sc.name)
						}
					}
				}
			}
		})
	}
}

// TestCompatUTF8PersistenceFromPushgateway1115 starts pushring on a
// persistence file Pushgateway 1.11.5 wrote with UTF-8 names and requires
// the same groups, names and series in its scrapes (as pushed and
// escaped) and its JSON API.
func TestCompatUTF8PersistenceFromPushgateway1115(t *testing.T) {
	pgBin := requireEnvTool(t, envPushgateway1115)
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pushgateway.data")
	flags := []string{"--push.enable-utf8-names", "--persistence.file=" + file}
	pg := startGateway(t, kindPushgateway, pgBin, flags)
	for _, p := range utf8Pushes(t) {
		if p.wantU8 == http.StatusOK {
			r := pg.doResp(t, http.MethodPut, p.path, p.header, p.body)
			require.Equal(t, http.StatusOK, r.status, "%s: %s", p.name, r.body)
		}
	}
	pg.barrier(t)
	scrapes := escapingScrapes()
	want := make([]map[string]scrapeFamily, len(scrapes))
	for i, sc := range scrapes {
		_, want[i] = scrapeEscaped(t, pg, sc)
	}
	require.Contains(t, want[0], "pb_plain", "the pushes reached the Pushgateway's scrape")
	wantAPI := pg.fetchAPI(t)
	pg.stop(t)
	fi, err := os.Stat(file)
	require.NoError(t, err, "the Pushgateway wrote no persistence file")
	require.NotZero(t, fi.Size())

	pr := startPushring(t, flags...)
	for i, sc := range scrapes {
		_, got := scrapeEscaped(t, pr, sc)
		require.Equal(t, want[i], got, "%s: Pushgateway 1.11.5 before it stopped (expected) vs pushring on its file (actual)", sc.name)
	}
	gotAPI := pr.fetchAPI(t)
	delete(wantAPI.Groups, groupKeyString(map[string]string{"job": barrierJob}))
	delete(gotAPI.Groups, groupKeyString(map[string]string{"job": barrierJob}))
	require.Equal(t, wantAPI, gotAPI, "/api/v1/metrics")
}
