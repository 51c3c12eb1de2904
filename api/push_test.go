package api

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/store"
)

func TestPushHandsTheRequestToTheIngester(t *testing.T) {
	ta := newTestAPI(t, Config{})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("m 1\n"))
	require.NoError(t, zw.Close())
	w := ta.do(http.MethodPost, "/metrics/job@base64/YmF0Y2g=/instance/a%2Fb?ignored=1", &gz,
		"Content-Type", "text/plain; version=0.0.4", "Content-Encoding", "gzip", "X-Extra", "1")
	require.Equal(t, http.StatusOK, w.Code)

	got := ta.ing.last(t)
	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, "/job@base64/YmF0Y2g=/instance/a%2Fb", got.Path, "escaped path after /metrics, no query")
	require.Equal(t, "text/plain; version=0.0.4", got.ContentType)
	require.Empty(t, got.ContentEncoding, "the api hands the body over decompressed")
	require.Equal(t, "m 1\n", got.body)
	require.Equal(t, []string{"1"}, got.Header["X-Extra"])
}

func TestPushSuccess(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusAccepted} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			ta := newTestAPI(t, Config{})
			ta.ing.result = ingest.Result{Status: status}
			for _, m := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
				w := ta.do(m, "/metrics/job/a", strings.NewReader(""))
				require.Equal(t, status, w.Code)
				require.Empty(t, w.Body.String())
				require.Equal(t, "0", w.Header().Get("Content-Length"))
				require.Empty(t, w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestPushErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code int
	}{
		{"bad path", fmt.Errorf("%w: odd number of components", ingest.ErrBadRequest), http.StatusBadRequest},
		{"too large", fmt.Errorf("%w: raise --push.max-body-bytes", ingest.ErrTooLarge), http.StatusRequestEntityTooLarge},
		{"inconsistent", fmt.Errorf("%w: collected metric was collected before", store.ErrInconsistent), http.StatusBadRequest},
		{"internal", errTest, http.StatusInternalServerError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ta := newTestAPI(t, Config{})
			ta.ing.err = c.err
			w := ta.do(http.MethodPut, "/metrics/job/a", strings.NewReader("m 1\n"))
			require.Equal(t, c.code, w.Code)
			require.Equal(t, c.err.Error()+"\n", w.Body.String())
			require.Equal(t, "text/plain; charset=utf-8", w.Header().Get("Content-Type"))
			require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
		})
	}
}

func TestGroupingPath(t *testing.T) {
	cases := []struct {
		escaped, prefix, want string
	}{
		{"/metrics/job/a", "", "/job/a"},
		{"/metrics/job/a/b/c", "", "/job/a/b/c"},
		{"/metrics/job/", "", "/job/"},
		{"/metrics/job@base64/YQ==/x@base64/=", "", "/job@base64/YQ==/x@base64/="},
		{"/metrics/job/a%2Fb/c/d%20e", "", "/job/a%2Fb/c/d%20e"},
		{"/pg/metrics/job/a", "/pg", "/job/a"},
		{"/a/b/metrics/job/a/x/y", "/a/b", "/job/a/x/y"},
		{"/p%67/metrics/job/a", "/pg", "/job/a"}, // the client escaped a prefix byte
	}
	for _, c := range cases {
		require.Equal(t, c.want, groupingPath(c.escaped, c.prefix), c.escaped)
	}
}
