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
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// Content types of the negotiation cases.
const (
	ctText004U   = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
	ctText100U8  = "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
	ctProtoU     = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores"
	ctOM100U     = "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
	ctOM001U     = "application/openmetrics-text; version=0.0.1; charset=utf-8; escaping=underscores"
	acceptProm3  = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
	acceptProm2  = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.25"
	acceptProto3 = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,*/*;q=0.1"
)

func TestScrapeNegotiation(t *testing.T) {
	text, proto, om := store.FormatText, store.FormatProtoDelim, store.FormatOpenMetrics
	u, u8, dots, values := model.UnderscoreEscaping, model.NoEscaping, model.DotsEscaping, model.ValueEncodingEscaping
	cases := []struct {
		name, accept string
		preferOM     bool
		format       store.Format
		contentType  string
	}{
		{"none", "", false, text.WithEscaping(u), ctText004U},
		{"any", "*/*", false, text.WithEscaping(u), ctText004U},
		{"json", "application/json", false, text.WithEscaping(u), ctText004U},
		{"text", "text/plain;version=0.0.4", false, text.WithEscaping(u), ctText004U},
		{"text 1.0.0 utf-8", "text/plain;version=1.0.0;escaping=allow-utf-8", false, text.WithEscaping(u8), ctText100U8},
		{"text dots", "text/plain;version=1.0.0;escaping=dots", false, text.WithEscaping(dots), "text/plain; version=1.0.0; charset=utf-8; escaping=dots"},
		{"text values", "text/plain;escaping=values", false, text.WithEscaping(values), "text/plain; version=0.0.4; charset=utf-8; escaping=values"},
		{"unknown escaping is underscores", "text/plain;version=1.0.0;escaping=bogus", false, text.WithEscaping(u), "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"},
		{"proto delimited", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", false, proto.WithEscaping(u), ctProtoU},
		{"proto utf-8", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8", false, proto.WithEscaping(u8),
			"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=allow-utf-8"},
		{"proto text is not rendered", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", false, text.WithEscaping(u), ctText004U},
		{"openmetrics only, 1.0.0", "application/openmetrics-text;version=1.0.0", false, om.WithEscaping(u), ctOM100U},
		{"openmetrics only, 0.0.1", "application/openmetrics-text;version=0.0.1", false, om.WithEscaping(u), ctOM001U},
		{"openmetrics only, unversioned is 0.0.1", "application/openmetrics-text", false, om.WithEscaping(u), ctOM001U},
		{"openmetrics unknown version", "application/openmetrics-text;version=9.9.9", false, text.WithEscaping(u), ctText004U},
		{"text refused with q=0", "application/openmetrics-text;version=1.0.0,text/plain;q=0", false, om.WithEscaping(u), ctOM100U},
		{"prometheus 3 default", acceptProm3, false, text.WithEscaping(u8), ctText100U8},
		{"prometheus 3 default, openmetrics preferred", acceptProm3, true, om.WithEscaping(u8),
			"application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"},
		{"prometheus 2", acceptProm2, false, text.WithEscaping(u), ctText004U},
		{"prometheus 2, openmetrics preferred", acceptProm2, true, om.WithEscaping(u), ctOM100U},
		{"prometheus 3 native histograms", acceptProto3, false, proto.WithEscaping(u), ctProtoU},
		{"openmetrics preferred, not accepted", "text/plain", true, text.WithEscaping(u), ctText004U},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ta := newTestAPI(t, Config{PreferOpenMetrics: c.preferOM})
			w := ta.do(http.MethodGet, "/metrics", nil, "Accept", c.accept)
			require.Equal(t, http.StatusOK, w.Code)
			require.Equal(t, c.contentType, w.Header().Get("Content-Type"))
			require.Empty(t, w.Header().Get("Content-Encoding"))
			require.Equal(t, c.format, ta.st.format, "%s", ta.st.format)
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
		require.Equal(t, ctText004U, w.Header().Get("Content-Type"))
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
		require.Equal(t, ctText004U, w.Header().Get("Content-Type"), "a scrape error names its format and escaping too")
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
		a, err := New(Config{TelemetryPath: "/metrics", MaxInflight: 1}, Deps{Pusher: ta.ing, Ingester: ta.ing, Store: ta.st, Cluster: ta.cl, Admission: NewAdmission(1, 0), Budget: NewBudget(Config{}, ta.ing), Own: bad}, promslog.NewNopLogger(), prometheus.NewRegistry())
		require.NoError(t, err)
		ta.API = a
		w := ta.do(http.MethodGet, "/metrics", nil)
		require.Equal(t, http.StatusInternalServerError, w.Code)
		require.True(t, strings.HasSuffix(w.Body.String(), "collector broke\n"), w.Body.String())
	})
}
