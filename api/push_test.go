package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
			// Through a real server: net/http writes Content-Length: 0
			// for the empty answer, as the Pushgateway's does.
			srv := httptest.NewServer(ta.Handler())
			defer srv.Close()
			for _, m := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
				req, err := http.NewRequest(m, srv.URL+"/metrics/job/a", strings.NewReader(""))
				require.NoError(t, err)
				resp, err := srv.Client().Do(req)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, status, resp.StatusCode)
				require.Empty(t, body)
				require.Equal(t, "0", resp.Header.Get("Content-Length"))
				require.Empty(t, resp.Header.Get("Content-Type"))
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

// The body of a push that succeeded is released once the pusher returns,
// so that its buffer serves a later push; a refused push's is not, since
// its error may quote the body and is written after the pusher returns.
func TestPushBodyReleasedAfterSuccessOnly(t *testing.T) {
	body := strings.Repeat("m 1\n", 1000) // 4000 bytes: a pooled buffer
	for _, c := range []struct {
		name     string
		err      error
		released bool
	}{
		{"applied", nil, true},
		{"refused", fmt.Errorf("%w: collected metric was collected before", store.ErrInconsistent), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ta := newTestAPI(t, Config{})
			ta.ing.err = c.err
			ta.do(http.MethodPut, "/metrics/job/a", strings.NewReader(body))
			req := ta.ing.last(t)
			require.Equal(t, body, req.body)
			b, ok := req.Body.(*ingest.Body)
			require.True(t, ok, "the pusher got the body read ahead")
			_, err := b.Bytes()
			if c.released {
				require.ErrorContains(t, err, "released")
			} else {
				require.NoError(t, err)
			}
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

// answeredErr is an error that carries its answer, as a push forwarded to
// its owner does.
type answeredErr struct{ code, retry int }

func (e answeredErr) Error() string          { return "answered" }
func (e answeredErr) HTTPStatus() int        { return e.code }
func (e answeredErr) RetryAfterSeconds() int { return e.retry }

// TestAnswer pins the one error-to-status mapper against the ingester's
// and the store's sentinels.
func TestAnswer(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		code  int
		retry int
	}{
		{"nil", nil, 200, 0},
		{"not found", fmt.Errorf("route: %w", ingest.ErrNotFound), 404, 0},
		{"bad request", fmt.Errorf("x: %w", ingest.ErrBadRequest), 400, 0},
		{"too large", fmt.Errorf("x: %w", ingest.ErrTooLarge), 413, 0},
		{"method", ingest.ErrMethodNotAllowed, 405, 0},
		{"inconsistent", fmt.Errorf("%w: duplicate", store.ErrInconsistent), 400, 0},
		{"store limit", &store.LimitError{Limit: store.LimitMaxGroups, Detail: "raise --store.max-groups"}, 429, 0},
		{"store limit wrapped", fmt.Errorf("apply: %w", store.ErrLimit), 429, 0},
		{"overloaded", fmt.Errorf("admission: %w", ingest.ErrOverloaded), 503, 1},
		{"answered by the owner", fmt.Errorf("forward: %w", answeredErr{429, 3}), 429, 3},
		{"cancelled", context.Canceled, 500, 0},
		{"other", errors.New("boom"), 500, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, retry := Answer(tt.err)
			require.Equal(t, tt.code, code)
			require.Equal(t, tt.retry, retry)
		})
	}
}
