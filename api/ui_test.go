package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

func TestStatusPage(t *testing.T) {
	ta := newTestAPI(t, Config{ExternalURL: "https://example.org/gw/", RoutePrefix: "/"})
	ta.st.groups = []store.GroupSnapshot{
		group(map[string]string{"job": "<script>alert(1)</script>", "a": `"quoted" & more`}, 1.7e9, 0),
		group(map[string]string{"job": "broken"}, 0, 1.7e9),
	}
	ta.st.groups[0].Deadline = time.Date(2026, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 7200))
	for _, target := range []string{"/", "/status"} {
		w := ta.do(http.MethodGet, target, nil)
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
		body := w.Body.String()

		require.NotContains(t, body, "<script>alert", "label values must be escaped")
		require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
		require.Contains(t, body, "&#34;quoted&#34; &amp; more")
		require.Contains(t, body, `href="/gw/metrics"`, "links use the external URL's path")
		require.Equal(t, 1, strings.Count(body, "Last push failed!"))
		require.Contains(t, body, "<td>never <span class=\"failed\">", "a group created by a failed push was never pushed")
		require.Contains(t, body, "<td>2026-05-06T05:08:09Z</td>", "the TTL deadline, in UTC")
		require.Contains(t, body, "<td>never</td>\n</tr>", "a group without a TTL never expires")

		// job is listed first in a group's labels.
		job, a := strings.Index(body, `job="&lt;script`), strings.Index(body, `a="&#34;quoted`)
		require.True(t, job >= 0 && a >= 0 && job < a, "job first, then the other labels")
	}
}

func TestStatusPageEmpty(t *testing.T) {
	ta := newTestAPI(t, Config{})
	w := ta.do(http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), "No groups have been pushed")
	require.Contains(t, w.Body.String(), `href="/metrics"`)
}

func TestJobFirst(t *testing.T) {
	got := jobFirst([]store.Label{{Name: "a"}, {Name: "z"}, {Name: "job"}, {Name: "instance"}})
	require.Equal(t, []store.Label{{Name: "job"}, {Name: "a"}, {Name: "instance"}, {Name: "z"}}, got)
}
