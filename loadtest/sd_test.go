package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSD(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    []string
		wantErr string
	}{
		{"one group", `[{"targets":["10.0.0.1:9091","10.0.0.2:9091"],"labels":{"job":"pushring"}}]`,
			[]string{"http://10.0.0.1:9091/metrics", "http://10.0.0.2:9091/metrics"}, ""},
		{"scheme and path labels", `[{"targets":["a:443"],"labels":{"__scheme__":"https","__metrics_path__":"shard/metrics"}}]`,
			[]string{"https://a:443/shard/metrics"}, ""},
		{"duplicates across groups", `[{"targets":["a:1"]},{"targets":["a:1","b:1"]}]`,
			[]string{"http://a:1/metrics", "http://b:1/metrics"}, ""},
		{"no labels key", `[{"targets":["a:1"]}]`, []string{"http://a:1/metrics"}, ""},
		{"empty list", `[]`, nil, ""},
		{"target with scheme", `[{"targets":["http://a:1"]}]`, nil, "not host:port"},
		{"empty target", `[{"targets":[""]}]`, nil, "not host:port"},
		{"not a list", `{"targets":["a:1"]}`, nil, "decode http_sd"},
		{"garbage", `<html>`, nil, "decode http_sd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSD(strings.NewReader(tt.doc))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestDiscover(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sd":
			_, _ = w.Write([]byte(`[{"targets":["127.0.0.1:1","127.0.0.1:2"]}]`))
		case "/empty":
			_, _ = w.Write([]byte(`[]`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	urls, err := discover(context.Background(), srv.Client(), srv.URL+"/sd")
	require.NoError(t, err)
	require.Equal(t, []string{"http://127.0.0.1:1/metrics", "http://127.0.0.1:2/metrics"}, urls)

	_, err = discover(context.Background(), srv.Client(), srv.URL+"/empty")
	require.ErrorContains(t, err, "lists no targets")
	_, err = discover(context.Background(), srv.Client(), srv.URL+"/missing")
	require.ErrorContains(t, err, "status 404")
}
