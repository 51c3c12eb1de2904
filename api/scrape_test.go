package api

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

func TestScrapeNegotiation(t *testing.T) {
	cases := []struct {
		name, accept string
		format       store.Format
		contentType  string
	}{
		{"none", "", store.FormatText, contentTypeText},
		{"any", "*/*", store.FormatText, contentTypeText},
		{"json", "application/json", store.FormatText, contentTypeText},
		{"text", "text/plain;version=0.0.4", store.FormatText, contentTypeText},
		{"proto delimited", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", store.FormatProtoDelim, contentTypeProtoDelim},
		{"proto text is not rendered", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", store.FormatText, contentTypeText},
		{"openmetrics 1.0.0", "application/openmetrics-text;version=1.0.0", store.FormatOpenMetrics, contentTypeOpenMetrics},
		{"openmetrics unversioned", "application/openmetrics-text", store.FormatOpenMetrics, contentTypeOpenMetrics},
		{"openmetrics unknown version", "application/openmetrics-text;version=9.9.9", store.FormatText, contentTypeText},
		{
			"prometheus 3 scrape",
			"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
			store.FormatOpenMetrics, contentTypeOpenMetrics,
		},
		{
			"protobuf preferred",
			"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5",
			store.FormatProtoDelim, contentTypeProtoDelim,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ta := newTestAPI(t, Config{})
			w := ta.do(http.MethodGet, "/metrics", nil, "Accept", c.accept)
			require.Equal(t, http.StatusOK, w.Code)
			require.Equal(t, c.contentType, w.Header().Get("Content-Type"))
			require.Empty(t, w.Header().Get("Content-Encoding"))
			require.Equal(t, c.format, ta.st.format)
			require.Equal(t, []string{"pushring_test_own"}, ta.st.extra, "own families go to the store as extra")
		})
	}
}

func TestScrapeGzip(t *testing.T) {
	ta := newTestAPI(t, Config{})
	plain := ta.do(http.MethodGet, "/metrics", nil).Body.String()

	for range 3 { // pooled writers must be reset between scrapes
		w := ta.do(http.MethodGet, "/metrics", nil, "Accept-Encoding", "br;q=1.0, gzip;q=0.8")
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, "gzip", w.Header().Get("Content-Encoding"))
		require.Equal(t, contentTypeText, w.Header().Get("Content-Type"))
		zr, err := gzip.NewReader(w.Body)
		require.NoError(t, err)
		got, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, plain, string(got))
	}
}

func TestAcceptsGzip(t *testing.T) {
	cases := map[string]bool{
		"":                       false,
		"gzip":                   true,
		"GZIP":                   true,
		"deflate, gzip":          true,
		"gzip;q=0":               false,
		"gzip; q=0.0":            false,
		"gzip;q=0.5":             true,
		"*":                      true,
		"*;q=0":                  false,
		"gzip;q=0, *":            false,
		"*, gzip;q=0":            false,
		"br, *;q=0.1":            true,
		"identity":               false,
		"gzip;q=abc":             false,
		"x-gzip":                 false,
		"deflate;q=1, gzip;q=1 ": true,
	}
	for header, want := range cases {
		require.Equal(t, want, acceptsGzip(header), "%q", header)
	}
}

func TestScrapeErrors(t *testing.T) {
	t.Run("store fails before writing", func(t *testing.T) {
		ta := newTestAPI(t, Config{})
		ta.st.failErr = errTest
		w := ta.do(http.MethodGet, "/metrics", nil, "Accept-Encoding", "gzip")
		require.Equal(t, http.StatusInternalServerError, w.Code)
		require.Equal(t, "An error has occurred while serving metrics:\n\ntest failure\n", w.Body.String())
		require.Empty(t, w.Header().Get("Content-Encoding"))
		require.Equal(t, "text/plain; charset=utf-8", w.Header().Get("Content-Type"))
	})
	t.Run("store fails after writing", func(t *testing.T) {
		ta := newTestAPI(t, Config{})
		ta.st.failErr, ta.st.failAt = errTest, 10
		require.PanicsWithValue(t, http.ErrAbortHandler, func() {
			ta.do(http.MethodGet, "/metrics", nil)
		}, "a truncated scrape must break the connection")
	})
	t.Run("own metrics fail", func(t *testing.T) {
		bad := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
			return nil, errors.New("collector broke")
		})
		ta := newTestAPI(t, Config{})
		a, err := New(Config{TelemetryPath: "/metrics", MaxInflight: 1}, Deps{Pusher: ta.ing, Ingester: ta.ing, Store: ta.st, Cluster: ta.cl, Admission: NewAdmission(1, 0), Own: bad}, promslog.NewNopLogger(), prometheus.NewRegistry())
		require.NoError(t, err)
		ta.API = a
		w := ta.do(http.MethodGet, "/metrics", nil)
		require.Equal(t, http.StatusInternalServerError, w.Code)
		require.True(t, strings.HasSuffix(w.Body.String(), "collector broke\n"), w.Body.String())
	})
}
