package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// envMemBench runs TestMemoryUnderPushFlood, which measures peak RSS for
// BENCHMARKS.md; it takes a minute and most of the machine.
const envMemBench = "PUSHRING_MEMBENCH"

// floodBody is a push of n series with 300-byte label values; broken adds
// a last line that does not parse, so the whole body is read and decoded
// and then refused with 400.
func floodBody(n int, broken bool) []byte {
	var b bytes.Buffer
	b.WriteString("# TYPE flood gauge\n")
	v := strings.Repeat("v", 300)
	for i := range n {
		fmt.Fprintf(&b, "flood{a=\"%s\",s=\"%d\"} %d\n", v, i, i)
	}
	if broken {
		b.WriteString("flood{ 1\n")
	}
	return b.Bytes()
}

// vmHWM returns the peak RSS of pid in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// flood sends n concurrent pushes of body and counts their status codes;
// beside them it sends one normal push and reports its status and time.
func flood(t *testing.T, g *gw, n int, body []byte, hdr http.Header) (codes map[int]int, normal int, normalTook time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	codes = map[int]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/metrics/job/flood/i/%d", g.base, i), bytes.NewReader(body))
			for k, v := range hdr {
				req.Header[k] = v
			}
			code := 0
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	start := time.Now()
	normal, _ = g.do(t, http.MethodPut, "/metrics/job/normal", nil, []byte("normal_value 1\n"))
	normalTook = time.Since(start)
	wg.Wait()
	return codes, normal, normalTook
}

// TestMemoryUnderPushFlood measures, as a process with GOMEMLIMIT as a
// 2 GiB container would give it (90 %), the peak RSS of 64 concurrent
// 16 MB pushes (49,000 series with 300-byte label values) and of 64
// concurrent gzip pushes of ~165 KB that inflate to 16 MB and are refused.
func TestMemoryUnderPushFlood(t *testing.T) {
	if os.Getenv(envMemBench) != "1" {
		t.Skipf("set %s=1 to measure", envMemBench)
	}
	limit := float64(2 << 30)
	t.Setenv("GOMEMLIMIT", strconv.FormatInt(int64(limit*memLimitShare), 10))
	for _, tt := range []struct {
		name string
		body func() ([]byte, http.Header)
	}{
		{"64 accepted 16 MB pushes", func() ([]byte, http.Header) { return floodBody(49_000, false), nil }},
		{"64 refused gzip pushes", func() ([]byte, http.Header) {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			_, _ = zw.Write(floodBody(49_000, true))
			_ = zw.Close()
			return z.Bytes(), hdrs("Content-Encoding", "gzip")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body, hdr := tt.body()
			g := startPushring(t)
			before := vmHWM(t, g.cmd.Process.Pid)
			codes, normal, took := flood(t, g, 64, body, hdr)
			peak := vmHWM(t, g.cmd.Process.Pid)
			t.Logf("%s: body %d bytes on the wire; answers %v; a normal push beside them: %d in %s; peak RSS %.0f MiB (%.0f MiB before)",
				tt.name, len(body), codes, normal, took.Round(time.Millisecond), float64(peak)/(1<<20), float64(before)/(1<<20))
			require.Less(t, peak, int64(2<<30), "peak RSS under the 2 GiB limit")
		})
	}
}

// TestMemoryUnderWholeStoreReads measures the peak RSS of 4 concurrent
// GET /api/v1/metrics on a peer holding 2M series (2,000 groups of 1,000),
// with GOMEMLIMIT as a 2 GiB container would give it, and a push beside
// them.
func TestMemoryUnderWholeStoreReads(t *testing.T) {
	if os.Getenv(envMemBench) != "1" {
		t.Skipf("set %s=1 to measure", envMemBench)
	}
	limit := float64(2 << 30)
	t.Setenv("GOMEMLIMIT", strconv.FormatInt(int64(limit*memLimitShare), 10))
	g := startPushring(t, "--store.max-series=2100000")
	const groups, series = 2000, 1000
	var body bytes.Buffer
	body.WriteString("# TYPE wide gauge\n")
	for i := range series {
		fmt.Fprintf(&body, "wide{s=\"%d\",zone=\"eu-west-1\"} %d\n", i, i)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var failed sync.Map
	for i := range groups {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := g.client.Post(fmt.Sprintf("%s/metrics/job/wide/instance/%d", g.base, i), "text/plain", bytes.NewReader(body.Bytes()))
			if err != nil {
				failed.Store(i, err.Error())
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Store(i, resp.Status)
			}
		})
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Fatalf("push %v: %v", k, v); return false })
	require.Equal(t, float64(groups*(series+2)), g.ownValue(t, "pushring_store_series", "", ""))
	before := vmHWM(t, g.cmd.Process.Pid)

	start := time.Now()
	sizes := make([]int64, 4)
	for i := range sizes {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{}}
			resp, err := client.Get(g.base + "/api/v1/metrics")
			if err != nil {
				return
			}
			sizes[i], _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		})
	}
	st, _ := g.do(t, http.MethodPut, "/metrics/job/normal", nil, []byte("normal_value 1\n"))
	wg.Wait()
	took := time.Since(start)
	peak := vmHWM(t, g.cmd.Process.Pid)
	t.Logf("4 concurrent /api/v1/metrics of %d series: %v bytes each in %s; push beside them: %d; peak RSS %.0f MiB (%.0f MiB after filling)",
		groups*(series+2), sizes, took.Round(time.Millisecond), st, float64(peak)/(1<<20), float64(before)/(1<<20))
	require.Less(t, peak, int64(2<<30), "peak RSS under the 2 GiB limit")
}
