package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/store"
)

func uiHistogramFamily(name string, kv ...string) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Help: proto.String("Latency."), Type: dto.MetricType_HISTOGRAM.Enum(),
		Metric: []*dto.Metric{{Label: labelPairs(kv...), Histogram: &dto.Histogram{
			SampleCount: proto.Uint64(7), SampleSum: proto.Float64(12.5),
			Bucket: []*dto.Bucket{{UpperBound: proto.Float64(0.25), CumulativeCount: proto.Uint64(3)}, {UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(7)}},
		}}}}
}

func uiSummaryFamily(name string, kv ...string) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_SUMMARY.Enum(),
		Metric: []*dto.Metric{{Label: labelPairs(kv...), Summary: &dto.Summary{
			SampleCount: proto.Uint64(9), SampleSum: proto.Float64(4.5),
			Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.99), Value: proto.Float64(0.875)}},
		}}}}
}

// The groups page escapes every value, counts the pushed families only,
// marks failures with their time, shows the expiry, lists job first and
// links below the external URL's path.
func TestGroupsPage(t *testing.T) {
	ta := newTestAPI(t, Config{ExternalURL: "https://example.org/gw/", RoutePrefix: "/"})
	now := float64(time.Now().Unix())
	ta.st.groups = []store.GroupSnapshot{
		group(map[string]string{"job": "<script>alert(1)</script>", "a": `"quoted" & more`}, now, 0,
			gaugeFamily("temperature", "Degrees.", 21.5, "instance", ""), uiHistogramFamily("latency_seconds"), uiSummaryFamily("rpc_seconds")),
		group(map[string]string{"job": "broken"}, 0, now-60),
	}
	ta.st.groups[0].Deadline = time.Now().Add(90 * time.Second)
	w := ta.do(http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	body := w.Body.String()

	require.NotContains(t, body, "<script>alert", "label values must be escaped")
	require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Contains(t, body, "&#34;quoted&#34; &amp; more")
	require.Contains(t, body, `href="/gw/metrics"`, "links use the external URL's path")
	require.Contains(t, body, `src="/gw/ui/static/ui.js"`)
	require.Contains(t, body, `<dd class="gfamilies">3</dd>`, "the time gauges are not counted")
	require.Contains(t, body, `<dd class="gfamilies">0</dd>`)
	require.Equal(t, 1, strings.Count(body, "Last push failed</dt>"))
	require.Regexp(t, `Last push failed</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(1m0\ds ago\)`, body)
	require.Regexp(t, `Expires</dt><dd>[^<]+ \(in 1m[23]\ds\)`, body)
	require.Contains(t, body, "Groups 1–2 of 2 on this peer.")
	for _, want := range []string{"temperature", "21.5", "latency_seconds", "12.5", "le 0.25", "rpc_seconds", "0.875", "Degrees.", "Latency."} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, `class="fname">push_time_seconds`, "the time gauges are the last push, not families")
	require.Equal(t, 2, strings.Count(body, `data-delete="/gw/metrics/job`), "a Delete per group")

	// Groups by job: "&lt;script..." sorts before "broken".
	job, a := strings.Index(body, `<span class="ln">job</span>=<span class="lv">"&lt;script`), strings.Index(body, `<span class="ln">a</span>`)
	require.True(t, job >= 0 && a >= 0 && job < a, "job first, then the other labels")
	require.Less(t, strings.Index(body, `job <span class="lv">"&lt;script`), strings.Index(body, `job <span class="lv">"broken`))
}

func TestGroupsPageFilterAndPaging(t *testing.T) {
	ta := newTestAPI(t, Config{})
	for i := range 25 {
		job := "batch-" + fmt.Sprint(i%2)
		ta.st.groups = append(ta.st.groups, group(map[string]string{"job": job, "instance": fmt.Sprintf("host-%02d", i)}, 1.7e9, 0))
	}
	ta.st.groups = append(ta.st.groups, group(map[string]string{"job": "other", "instance": "host-99"}, 1.7e9, 0))

	instances := func(body string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`data-key="\{job=&#34;[^&]+&#34;,instance=&#34;(host-\d+)`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	w := ta.do(http.MethodGet, `/?match=job%3D~%22batch-.*%22&limit=10`, nil)
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	require.Contains(t, body, "Groups 1–10 of 25 matching, of 26 on this peer.")
	require.Len(t, instances(body), 10)
	require.Contains(t, body, `href="/?limit=10&amp;match=job%3D~%22batch-.%2A%22&amp;page=2" rel="next"`)
	require.NotContains(t, body, `rel="prev"`)

	w = ta.do(http.MethodGet, `/?match=job%3D~%22batch-.*%22&limit=10&page=3`, nil)
	body = w.Body.String()
	require.Contains(t, body, "Groups 21–25 of 25 matching")
	require.Len(t, instances(body), 5)
	require.NotContains(t, body, `rel="next"`)
	require.Contains(t, body, `rel="prev"`)

	w = ta.do(http.MethodGet, `/?limit=10&page=9`, nil)
	require.Contains(t, w.Body.String(), "No groups on page 9: 26 on this peer.")
	require.Contains(t, w.Body.String(), `href="/?limit=10&amp;page=3" rel="prev"`, "back to the last page")

	w = ta.do(http.MethodGet, `/?match={job!="batch-0",instance=~"host-(01|99)"}`, nil)
	require.Equal(t, []string{"host-01", "host-99"}, instances(w.Body.String()))

	w = ta.do(http.MethodGet, `/?q=HOST-2`, nil)
	require.ElementsMatch(t, []string{"host-20", "host-21", "host-22", "host-23", "host-24"}, instances(w.Body.String()))

	for _, bad := range []string{`/?match=job%3D~%22(%22`, `/?match=job%3Dbatch`, `/?match=job%3D%22a%22+instance%3D%22b%22`, `/?limit=0`, `/?limit=5000`} {
		w = ta.do(http.MethodGet, bad, nil)
		require.Equal(t, http.StatusBadRequest, w.Code, bad)
		require.Contains(t, w.Body.String(), `class="error" role="alert"`, bad)
	}
}

func TestParseFilter(t *testing.T) {
	f, err := parseFilter(` { job =~ "batch.*" , "odd name"!="x\"y", zone!~"eu-.*" } `, " Web ")
	require.NoError(t, err)
	require.Len(t, f.matchers, 3)
	require.Equal(t, labelMatcher{name: "odd name", op: "!=", value: `x"y`}, f.matchers[1])
	require.Equal(t, "web", f.text)
	ls := []store.Label{{Name: "job", Value: "batch-web"}}
	require.True(t, f.matches(ls), "absent labels match as empty")
	require.False(t, f.matches([]store.Label{{Name: "job", Value: "xbatch-web"}}), "regexes are anchored")
	require.False(t, f.matches(append(ls, store.Label{Name: "zone", Value: "eu-1"})))
	require.False(t, f.matches([]store.Label{{Name: "job", Value: "batch-db"}}), "free text")
}

func TestDeletePath(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"job": "batch", "instance": "host:1"}, "/metrics/job/batch/instance/host:1"},
		{map[string]string{"job": "a/b", "x": ""}, "/metrics/job@base64/YS9i/x@base64/="},
		{map[string]string{"job": "j", "dotted.name": "v w"}, "/metrics/job/j/U__dotted_2e_name@base64/diB3"},
	} {
		k := store.NewGroupKey(tc.labels)
		require.Equal(t, tc.want, deletePath(k))
		got, err := ingest.ParseGroupingPath(strings.TrimPrefix(tc.want, "/metrics"))
		if !strings.Contains(tc.want, "U__") { // UTF-8 names need --push.enable-utf8-names
			require.NoError(t, err)
			require.Equal(t, k, got, "the gateway reads the path back to the same group")
		}
	}
}

func TestGroupPage(t *testing.T) {
	ta := newTestAPI(t, Config{})
	g := group(map[string]string{"job": "j", "instance": "<b>"}, 1.7e9, 0, uiHistogramFamily("latency_seconds", "instance", "<b>", "job", "j"))
	ta.st.groups = []store.GroupSnapshot{g}
	w := ta.do(http.MethodGet, "/", nil)
	url := regexp.MustCompile(`href="(/group\?key=[^"]+)"`).FindStringSubmatch(w.Body.String())
	require.NotNil(t, url)
	w = ta.do(http.MethodGet, strings.ReplaceAll(url[1], "&amp;", "&"), nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	body := w.Body.String()
	for _, want := range []string{"latency_seconds", "histogram", "Latency.", "le 0.25", "<td class=\"v\">3</td>", "le 1", "12.5", "&lt;b&gt;", `data-after="/"`} {
		require.Contains(t, body, want)
	}
	w = ta.do(http.MethodGet, "/group?key=bm9wZQ", nil)
	require.Equal(t, http.StatusBadRequest, w.Code)
	ta.st.groups = nil
	w = ta.do(http.MethodGet, strings.ReplaceAll(url[1], "&amp;", "&"), nil)
	require.Equal(t, http.StatusNotFound, w.Code)
	require.Contains(t, w.Body.String(), `no group {job="j",instance="<b>"} here`)
}

// A native histogram is summarised: count, sum, schema, zero bucket and
// how many buckets each side has; float counts are shown as floats.
func TestNativeHistogramView(t *testing.T) {
	sv := seriesOf(&dto.Metric{Histogram: &dto.Histogram{
		SampleCountFloat: proto.Float64(10.5), SampleSum: proto.Float64(3.25), Schema: proto.Int32(3),
		ZeroThreshold: proto.Float64(1e-128), ZeroCount: proto.Uint64(2),
		PositiveSpan: []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(2)}, {Offset: proto.Int32(4), Length: proto.Uint32(3)}},
		NegativeSpan: []*dto.BucketSpan{{Offset: proto.Int32(1), Length: proto.Uint32(1)}},
	}})
	require.Equal(t, []nameValue{{"count", "10.5"}, {"sum", "3.25"}, {"native schema", "3"}, {"zero threshold", "1e-128"},
		{"zero count", "2"}, {"positive buckets", "5"}, {"negative buckets", "1"}}, sv.Detail)
	require.Empty(t, sv.Buckets, "no classic buckets")
}

func TestStatusPageUI(t *testing.T) {
	ta := newTestAPI(t, Config{
		Flags:     map[string]string{"persistence.file": "/data/p.db", "push.ttl": "1h0m0s", "web.listen-address": ":9091"},
		BuildInfo: map[string]string{"version": "1.2.3", "revision": "abc"},
		StartTime: time.Now().Add(-time.Hour),
	})
	w := ta.do(http.MethodGet, "/status", nil)
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	for _, want := range []string{"1.2.3", "abc", "(1h00m ago)", "--web.listen-address", ":9091", "/data/p.db", "never since the start", "1h0m0s",
		"<code>batch-.*</code>", `<code>instance=~"&lt;edge&gt;.*"</code>`, "10m0s"} {
		require.Contains(t, body, want)
	}
}

func TestClusterPageAndLocate(t *testing.T) {
	ta := newTestAPI(t, Config{})
	three, five := 3, 5
	ta.cl.status = ClusterStatus{Self: "peer-a", Settled: true, Peers: []PeerStatus{
		{ID: "peer-a", State: "alive", Self: true, HTTPAddr: "10.0.0.1:9091", Groups: &three, Series: &five, Joined: time.Now().Add(-2 * time.Minute)},
		{ID: "peer-<b>", State: "alive", HTTPAddr: "10.0.0.2:9091", Err: "no answer within --cluster.fanout-timeout=2s"},
	}}
	w := ta.do(http.MethodGet, "/cluster", nil)
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	for _, want := range []string{"peer-a", "this peer", "10.0.0.1:9091", "<td>3</td>", "<td>5</td>", "2m0", "peer-&lt;b&gt;", "did not answer: no answer within"} {
		require.Contains(t, body, want)
	}

	ta.st.groups = []store.GroupSnapshot{group(map[string]string{"job": "j", "instance": "i"}, 1, 0)}
	w = ta.do(http.MethodGet, "/api/v1/cluster/locate?job=j&instance=i", nil)
	require.Equal(t, http.StatusOK, w.Code)
	var got struct {
		Data locateJSON `json:"data"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, locateJSON{Labels: map[string]string{"job": "j", "instance": "i"}, Owner: "peer-0", OwnerHTTPAddr: ":9091", Replicas: []string{}, HeldHere: true}, got.Data)
	require.Contains(t, w.Body.String(), `"replicas":[]`)

	w = ta.do(http.MethodGet, "/api/v1/cluster/locate?instance=i", nil)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), "job among them")
	w = ta.do(http.MethodGet, "/api/v1/cluster/locate?job=a&job=b", nil)
	require.Equal(t, http.StatusBadRequest, w.Code)
}

// The cluster scope lists every peer's groups with the peer holding each
// and names the peers that did not answer.
func TestGroupsPageClusterScope(t *testing.T) {
	ta := newTestAPI(t, Config{})
	ta.cl.byPeer = []PeerGroups{
		{Peer: "peer-0", Groups: []store.GroupSnapshot{group(map[string]string{"job": "b"}, 1.7e9, 0)}},
		{Peer: "peer-1", Groups: []store.GroupSnapshot{group(map[string]string{"job": "a"}, 1.7e9, 0)}},
		{Peer: "peer-2", Err: "no answer within --cluster.fanout-timeout=2s"},
		{Peer: "peer-3", Groups: []store.GroupSnapshot{group(map[string]string{"job": "b"}, 1.7e9, 0)}}, // a copy
	}
	w := ta.do(http.MethodGet, "/?scope=cluster", nil)
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	require.Contains(t, body, `Not answered: peer &#34;peer-2&#34;: no answer within`)
	require.Contains(t, body, "Groups 1–2 of 2 in the cluster.")
	require.Regexp(t, `(?s)class="gpeer">peer-1<.*class="gpeer">peer-0<`, body, "by job: a (peer-1) before b (peer-0)")
	require.Equal(t, 1, strings.Count(body, `class="greplicas"`))
	require.Regexp(t, `(?s)class="gpeer">peer-0<.*Copies also on</dt><dd class="greplicas">peer-3<`, body, "a group held twice is listed once, with the owner's copy (the fake's owner is peer-0)")
	require.Contains(t, body, `/group?key=`)
	require.Contains(t, body, `peer=peer-1`)
}

func TestUIStatic(t *testing.T) {
	ta := newTestAPI(t, Config{RoutePrefix: "/pg"})
	w := ta.do(http.MethodGet, "/pg/ui/static/ui.js", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), "DELETE")
	w = ta.do(http.MethodGet, "/pg/ui/static/ui.css", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Header().Get("Content-Type"), "text/css")
	w = ta.do(http.MethodGet, "/pg/ui/static/base.html", nil)
	require.Equal(t, http.StatusNotFound, w.Code)
}

func TestJobFirst(t *testing.T) {
	got := jobFirst([]store.Label{{Name: "a"}, {Name: "z"}, {Name: "job"}, {Name: "instance"}})
	require.Equal(t, []store.Label{{Name: "job"}, {Name: "a"}, {Name: "instance"}, {Name: "z"}}, got)
}
