package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunRejectsBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	require.ErrorContains(t, run(context.Background(), []string{"-nodes=0"}, &out, &errOut), "-nodes must be at least 1")
	require.Error(t, run(context.Background(), []string{"-no-such-flag"}, &out, &errOut))
	require.NoError(t, run(context.Background(), []string{"-h"}, &out, &errOut))
	require.Contains(t, errOut.String(), "-spawn-pushgateway")
	require.Empty(t, out.String())
}

func TestRunFailsWhenTheCheckFails(t *testing.T) {
	// A target that acknowledges every push and exposes nothing.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{
		"-url=" + srv.URL, "-mode=closed", "-groups=3", "-count=6", "-duration=0", "-check", "-json", "-progress=false",
	}, &out, &errOut)
	require.ErrorIs(t, err, errCheckFailed)
	require.Contains(t, out.String(), `"missing": 3`)
}
