package loadtest

import (
	"net/url"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSamplesKeepTheFirstOfEveryClass(t *testing.T) {
	st := newStats()
	for range 10 {
		st.end(st.begin(), &StatusError{Code: 503, Body: "busy", RetryAfter: "1"})
	}
	st.end(st.begin(), &url.Error{Op: "Put", URL: "http://x", Err: syscall.ECONNRESET})
	st.end(st.begin(), &url.Error{Op: "Put", URL: "http://x", Err: syscall.ECONNRESET})
	st.end(st.begin(), nil)
	require.Equal(t, uint64(13), st.attempted.Load())

	e := st.errorCounts()
	require.Equal(t, uint64(12), e.Total)
	require.Equal(t, uint64(2), e.Connection)
	require.Equal(t, map[string]uint64{"503": 10}, e.StatusCodes)
	require.Equal(t, map[string]uint64{"503": 10}, e.RetryAfter)
	require.Len(t, e.Samples, maxErrorSamples+1, "five 503s, then the first connection error")
	require.Contains(t, e.Samples[maxErrorSamples], "connection reset")
}
