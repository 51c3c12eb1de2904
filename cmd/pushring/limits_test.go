package main

// Black-box tests of the bounds on every resource (docs/design.md,
// "Bounded", and docs/limits-and-ttl.md): each limit's status code and message reach the
// client, slow clients are cut off, a full peer keeps what it has, a gzip
// bomb is refused, and the self-metrics do not grow with what is pushed.
// Like the rest of the black-box suite they drive the built binary over
// HTTP only.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// ownFamilies scrapes g and returns its pushring_* families.
func (g *gw) ownFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	st, body := g.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, st, body)
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	for name := range mfs {
		if !strings.HasPrefix(name, "pushring_") {
			delete(mfs, name)
		}
	}
	return mfs
}

// ownValue returns the value of the own series name{label=value} (no label
// when label is ""), failing the test when there is no such series.
func (g *gw) ownValue(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mf, ok := g.ownFamilies(t)[name]
	require.True(t, ok, "no family %s", name)
	for _, m := range mf.GetMetric() {
		if label != "" && labelValue(m, label) != value {
			continue
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		default:
			return m.GetUntyped().GetValue()
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

// rejected returns pushring_pushes_rejected_total{reason=reason}.
func (g *gw) rejected(t *testing.T, reason string) float64 {
	t.Helper()
	return g.ownValue(t, "pushring_pushes_rejected_total", "reason", reason)
}

// TestBlackBoxLimitStatusCodes checks that every limit's status code, its
// message naming the flag, and (for overload) Retry-After reach an HTTP
// client, and that each refusal is counted under its reason.
func TestBlackBoxLimitStatusCodes(t *testing.T) {
	t.Parallel()
	g := startPushring(t,
		"--push.max-body-bytes=4096",
		"--push.max-series=5",
		"--push.max-labels-per-series=5",
		"--push.max-label-name-length=16",
		"--push.max-label-value-length=16",
		"--push.max-metric-name-length=16",
		"--store.max-series=11",
		"--web.max-header-bytes=1024",
	)
	series := func(n int) []byte {
		var b bytes.Buffer
		for i := range n {
			fmt.Fprintf(&b, "s{i=\"%d\"} 1\n", i)
		}
		return b.Bytes()
	}
	long := strings.Repeat("x", 17)
	cases := []struct {
		name   string
		path   string
		header http.Header
		body   []byte
		code   int
		text   string // the body contains it
		reason string // pushring_pushes_rejected_total reason, "" if none
	}{
		{"body bytes", "/metrics/job/a", nil, []byte("m 1\n" + strings.Repeat("# filler\n", 500)),
			413, "--push.max-body-bytes", "too_large"},
		{"gzipped body bytes", "/metrics/job/a", hdrs("Content-Encoding", "gzip"), gzipBytes(t, bytes.Repeat([]byte("# filler\n"), 1000)),
			413, "--push.max-body-bytes", "too_large"},
		{"series per push", "/metrics/job/a", nil, series(6), 413, "raise --push.max-series", "series_per_push"},
		{"labels per series", "/metrics/job/a", nil, []byte(`m{a="1",b="2",c="3",d="4"} 1` + "\n"),
			400, "raise --push.max-labels-per-series", "labels_per_series"},
		{"label name", "/metrics/job/a", nil, []byte(`m{` + long + `="1"} 1` + "\n"),
			400, "raise --push.max-label-name-length", "label_name_length"},
		{"label value", "/metrics/job/a", nil, []byte(`m{a="` + long + `"} 1` + "\n"),
			400, "raise --push.max-label-value-length", "label_value_length"},
		{"grouping label value", "/metrics/job/a/b/" + long, nil, []byte("m 1\n"),
			400, "raise --push.max-label-value-length", "label_value_length"},
		{"metric name", "/metrics/job/a", nil, []byte(long + " 1\n"),
			400, "raise --push.max-metric-name-length", "metric_name_length"},
		{"ttl header", "/metrics/job/a", hdrs("Pushring-TTL", "soon"), []byte("m 1\n"),
			400, "invalid Pushring-TTL header", "ttl"},
		// net/http allows 4 KiB of slop past the limit, and on a reused
		// connection up to 4 KiB more already sit in its read buffer.
		{"header bytes", "/metrics/job/a", hdrs("X-Filler", strings.Repeat("h", 16<<10)), []byte("m 1\n"),
			431, "Request Header Fields Too Large", ""},
	}
	for _, c := range cases {
		var before float64
		if c.reason != "" {
			before = g.rejected(t, c.reason)
		}
		st, body := g.do(t, http.MethodPut, c.path, c.header, c.body)
		require.Equal(t, c.code, st, "%s: %s", c.name, body)
		require.Contains(t, body, c.text, c.name)
		if c.reason != "" {
			require.Equal(t, before+1, g.rejected(t, c.reason), "%s counted under reason %q", c.name, c.reason)
		}
	}

	// The store's series limit: 11 series fit two groups of s{i=0..2} plus
	// their two push-time gauges each (10), but no third group. (The group
	// limit is TestBlackBoxCardinalityAttack's.)
	for _, job := range []string{"g1", "g2"} {
		st, body := g.do(t, http.MethodPut, "/metrics/job/"+job, nil, series(3))
		require.Equal(t, http.StatusOK, st, body)
	}
	st, body := g.do(t, http.MethodPut, "/metrics/job/g3", nil, series(1))
	require.Equal(t, http.StatusTooManyRequests, st, body)
	require.Contains(t, body, "raise --store.max-series")
	require.Equal(t, 1.0, g.rejected(t, "max_series"))
	// Replacing a group with as many series still fits at the limit.
	st, body = g.do(t, http.MethodPut, "/metrics/job/g1", nil, series(3))
	require.Equal(t, http.StatusOK, st, body)
	st, body = g.do(t, http.MethodPut, "/metrics/job/g3", nil, []byte{})
	require.Equal(t, http.StatusTooManyRequests, st, body, "an empty group still has its push-time gauges")
	require.Equal(t, 2.0, g.rejected(t, "max_series"))
}

// TestBlackBoxStalledBodies opens 300 pushes that send their headers and
// the start of a body announced as 100 kB, then stall: with the default
// --push.max-inflight of 64 they once held every slot, and normal pushes
// got 503 until --web.read-timeout cut them off. Bodies are now read before
// a push takes a slot, so a normal push beside them gets 200, /-/ready
// stays ready, and the stalled pushes end with 408 by the body deadline.
// BENCHMARKS.md records how long the normal push took.
func TestBlackBoxStalledBodies(t *testing.T) {
	t.Parallel()
	g := startPushring(t, "--push.body-timeout=20s")
	addr := strings.TrimPrefix(g.base, "http://")
	const stalled = 300
	conns := make([]net.Conn, 0, stalled)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	d := net.Dialer{Timeout: 10 * time.Second}
	for i := range stalled {
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = fmt.Fprintf(c, "PUT /metrics/job/stalled/i/%d HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n# TYPE stalled gauge\n", i, addr)
		require.NoError(t, err)
	}
	eventually(t, 15*time.Second, func() error { return g.wantOwn(t, "pushring_push_bodies_reading", stalled) })

	start := time.Now()
	st, body := g.do(t, http.MethodPut, "/metrics/job/normal", nil, []byte("normal_value 1\n"))
	took := time.Since(start)
	require.Equal(t, http.StatusOK, st, body)
	t.Logf("a normal push beside %d stalled bodies: %d in %s", stalled, st, took)
	st, body = g.do(t, http.MethodGet, "/-/ready", nil, nil)
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, 0.0, g.ownValue(t, "pushring_push_inflight", "", ""), "stalled bodies hold no slot")

	// The stalled pushes are cut off by the body deadline: they send
	// nothing more, so the minimum rate ends them after its 5 s grace.
	r := bufio.NewReader(conns[0])
	_ = conns[0].SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	eventually(t, 30*time.Second, func() error { return g.wantOwn(t, "pushring_push_bodies_reading", 0) })
	require.Equal(t, float64(stalled), g.rejected(t, "body_timeout"))
}

// wantOwn returns nil once the unlabelled own gauge name has value want.
func (g *gw) wantOwn(t *testing.T, name string, want float64) error {
	t.Helper()
	if v := g.ownValue(t, name, "", ""); v != want {
		return fmt.Errorf("%s is %v, want %v", name, v, want)
	}
	return nil
}

// TestBlackBoxSlowloris opens hundreds of connections that stall in their
// headers or send nothing, checks that normal pushes still all succeed,
// and that the gateway closes every stalled connection on its own.
func TestBlackBoxSlowloris(t *testing.T) {
	t.Parallel()
	g := startPushring(t, "--web.read-header-timeout=1s")
	addr := strings.TrimPrefix(g.base, "http://")
	const stalled, idle, pushes = 300, 300, 50

	conns := make([]net.Conn, 0, stalled+idle)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	d := net.Dialer{Timeout: 10 * time.Second}
	for i := range stalled + idle {
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
		if i < stalled {
			// A request line and some headers, never the blank line.
			_, err = io.WriteString(c, "PUT /metrics/job/slow HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: text/plain\r\nX-Slow: ")
			require.NoError(t, err)
		}
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	errs := make(chan error, pushes)
	var wg sync.WaitGroup
	for i := range pushes {
		wg.Go(func() {
			url := fmt.Sprintf("%s/metrics/job/normal/instance/%d", g.base, i)
			req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(fmt.Sprintf("normal_value %d\n", i)))
			if err != nil {
				errs <- err
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("push %d: status %d", i, resp.StatusCode)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st, body := g.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, st)
	for i := range pushes {
		require.Contains(t, body, fmt.Sprintf("normal_value{instance=\"%d\",job=\"normal\"} %d\n", i, i))
	}

	// Every stalled and idle connection ends from the server's side: a
	// read returns EOF (or a reset) before the read deadline. The deadline
	// leaves the 1s flag ample slack on a loaded machine but is shorter
	// than the 10s default, so the test also proves the flag is applied.
	closeDeadline := time.Now().Add(8 * time.Second)
	open := make(chan int, len(conns))
	for i, c := range conns {
		go func() {
			_ = c.SetReadDeadline(closeDeadline)
			_, err := io.Copy(io.Discard, c)
			if errors.Is(err, syscall.ECONNRESET) {
				err = nil
			}
			if err != nil {
				open <- i // still open at the deadline (or another error)
				return
			}
			open <- -1
		}()
	}
	var stillOpen []int
	for range conns {
		if i := <-open; i >= 0 {
			stillOpen = append(stillOpen, i)
		}
	}
	sort.Ints(stillOpen)
	require.Zero(t, len(stillOpen), "%d connections the server did not close, first %v (0..%d stalled, then idle)",
		len(stillOpen), stillOpen[:min(len(stillOpen), 10)], stalled-1)
	st, _ = g.do(t, http.MethodGet, "/-/healthy", nil, nil)
	require.Equal(t, http.StatusOK, st)
}

// TestBlackBoxCardinalityAttack pushes many distinct groups past
// --store.max-groups: the first ones are stored, the rest get 429 naming
// the flag, and the stored groups keep their values.
func TestBlackBoxCardinalityAttack(t *testing.T) {
	t.Parallel()
	g := startPushring(t, "--store.max-groups=100")
	const total, limit = 500, 100
	accepted, refused := 0, 0
	for i := range total {
		st, body := g.do(t, http.MethodPut, fmt.Sprintf("/metrics/job/attack/instance/i%03d", i), nil,
			[]byte(fmt.Sprintf("attack_value %d\n", i)))
		switch st {
		case http.StatusOK:
			accepted++
			require.Less(t, i, limit, "group %d accepted past the limit", i)
		case http.StatusTooManyRequests:
			refused++
			require.Contains(t, body, "raise --store.max-groups")
		default:
			t.Fatalf("push %d: %d %s", i, st, body)
		}
	}
	require.Equal(t, limit, accepted)
	require.Equal(t, total-limit, refused)
	require.Equal(t, float64(total-limit), g.rejected(t, "max_groups"))

	// A stored group can still be updated at the limit.
	st, body := g.do(t, http.MethodPut, "/metrics/job/attack/instance/i000", nil, []byte("attack_value 0\n"))
	require.Equal(t, http.StatusOK, st, body)

	st, body = g.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, st)
	fams, err := parseScrape(body)
	require.NoError(t, err)
	var want []string
	for i := range limit {
		want = append(want, fmt.Sprintf(`attack_value{instance="i%03d",job="attack"} %d`, i, i))
	}
	sort.Strings(want)
	require.Equal(t, want, fams["attack_value"].Series, "exactly the first groups, with their values")
	require.Equal(t, float64(limit), g.ownValue(t, "pushring_store_groups", "", ""))

	api := g.fetchAPI(t)
	require.Len(t, api.Groups, limit)
	for _, grp := range api.Groups {
		require.True(t, grp.LastPushSuccessful, "a refused push leaves no failure behind")
	}
}

// TestBlackBoxGzipBomb sends 64 MiB of zeros gzipped to ~64 KiB, several at
// once: each is refused with 413 naming the flag after decompressing no
// more than the limit, and the gateway stays up and does not grow by
// anything like a decompressed bomb.
func TestBlackBoxGzipBomb(t *testing.T) {
	t.Parallel()
	g := startPushring(t, "--push.max-body-bytes=1048576")
	bomb := gzipZeros(t, 64)
	require.Less(t, len(bomb), 128<<10)
	rssBefore := g.ownProcessRSS(t)

	const bombs = 4
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make(chan answer, bombs)
	for range bombs {
		go func() {
			req, err := http.NewRequest(http.MethodPut, g.base+"/metrics/job/bomb", bytes.NewReader(bomb))
			if err != nil {
				answers <- answer{err: err}
				return
			}
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := g.client.Do(req)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			answers <- answer{status: resp.StatusCode, body: string(b), err: err}
		}()
	}
	for range bombs {
		a := <-answers
		require.NoError(t, a.err)
		require.Equal(t, http.StatusRequestEntityTooLarge, a.status, a.body)
		require.Contains(t, a.body, "--push.max-body-bytes")
	}

	st, body := g.do(t, http.MethodGet, "/-/healthy", nil, nil)
	require.Equal(t, http.StatusOK, st, body)
	st, body = g.do(t, http.MethodPut, "/metrics/job/after", nil, []byte("after_bomb 1\n"))
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, float64(bombs), g.rejected(t, "too_large"))
	grown := g.ownProcessRSS(t) - rssBefore
	require.Less(t, grown, float64(48<<20), "RSS grew by %.0f MiB: a bomb was inflated", grown/(1<<20))
}

// gzipZeros returns a gzip file of n MiB of zeros: n copies of one gzip
// member of a MiB of zeros. A multi-member file is one gzip stream to
// every reader (RFC 1952 §2.2, Go's gzip.Reader by default), and
// compressing a MiB once instead of 64 keeps the race-instrumented test
// fast.
func gzipZeros(t *testing.T, mib int) []byte {
	t.Helper()
	member := gzipBytes(t, make([]byte, 1<<20))
	return bytes.Repeat(member, mib)
}

// ownProcessRSS returns the gateway's process_resident_memory_bytes.
func (g *gw) ownProcessRSS(t *testing.T) float64 {
	t.Helper()
	st, body := g.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, st)
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	mf, ok := mfs["process_resident_memory_bytes"]
	if !ok {
		t.Skip("process_resident_memory_bytes is not exported on this platform")
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

// TestBlackBoxSelfMetricCardinality pushes 10,000 distinct groups and
// checks that the set of the gateway's own series is the same before and
// after: no self-metric takes a path, a grouping key or a value as a label.
func TestBlackBoxSelfMetricCardinality(t *testing.T) {
	t.Parallel()
	g := startPushring(t)
	// Warm up every route and status class the run below uses, so their
	// label values exist before the first count.
	st, body := g.do(t, http.MethodPut, "/metrics/job/warmup", nil, []byte("warmup 1\n"))
	require.Equal(t, http.StatusOK, st, body)
	g.ownFamilies(t)
	before := ownSeries(g.ownFamilies(t))

	const groups, workers = 10000, 4
	addr := strings.TrimPrefix(g.base, "http://")
	failures := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { failures <- pushGroups(addr, w, workers, groups) })
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		require.NoError(t, err)
	}
	require.Equal(t, float64(groups+1), g.ownValue(t, "pushring_store_groups", "", ""))

	after := ownSeries(g.ownFamilies(t))
	require.Equal(t, len(before), len(after), "the number of own series changed")
	require.Equal(t, before, after, "own series must be the same set")
}

// pushGroups pushes the groups i ≡ w (mod workers) of the cardinality
// test over one keep-alive connection, each with a distinct grouping key, a
// distinct label value and a distinct value. It writes requests and reads
// responses itself: a race-instrumented http.Client costs more CPU than the
// gateway does, and the point here is the gateway's metrics, not the client.
func pushGroups(addr string, w, workers, groups int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(waitDeadline)); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	for i := w; i < groups; i += workers {
		body := fmt.Sprintf("# TYPE card_value gauge\ncard_value{path=\"/var/%d\"} %d\n", i, i)
		fmt.Fprintf(bw, "PUT /metrics/job/card/node/node-%05d HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s",
			i, addr, len(body), body)
		if err := bw.Flush(); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("push %d: %w", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("push %d: status %d", i, resp.StatusCode)
		}
	}
	return nil
}

// ownSeries returns the identity (name and labels, not value) of every own
// series, histogram buckets and summary quantiles included.
func ownSeries(mfs map[string]*dto.MetricFamily) []string {
	var out []string
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, line := range sampleLines(name, mf.GetType(), m) {
				series, _, _ := strings.Cut(line, " ")
				out = append(out, series)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestBlackBoxRefusalsLeaveRoomForValidPushers sends 1,000 pushes refused
// with 400 for groups that did not exist, then fills --store.max-groups
// with valid pushers: the refusals' failure-only groups count against
// --store.max-failure-groups instead, so every valid push gets 200.
func TestBlackBoxRefusalsLeaveRoomForValidPushers(t *testing.T) {
	t.Parallel()
	g := startPushring(t, "--store.max-groups=100")
	for i := range 1000 {
		st, body := g.do(t, http.MethodPut, fmt.Sprintf("/metrics/job/refused/i/%d", i), nil, []byte("stamped 1 1700000000000\n"))
		require.Equal(t, http.StatusBadRequest, st, body)
	}
	for i := range 100 {
		st, body := g.do(t, http.MethodPut, fmt.Sprintf("/metrics/job/valid/i/%d", i), nil, []byte("valid 1\n"))
		require.Equal(t, http.StatusOK, st, "valid push %d: %s", i, body)
	}
	st, body := g.do(t, http.MethodPut, "/metrics/job/valid/i/100", nil, []byte("valid 1\n"))
	require.Equal(t, http.StatusTooManyRequests, st)
	require.Contains(t, body, "raise --store.max-groups")
	require.Equal(t, 1100.0, g.ownValue(t, "pushring_store_groups", "", ""))
}
