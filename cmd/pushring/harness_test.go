package main

// Black-box harness shared by compat_test.go and e2e_test.go: it builds the
// gateway binary once, starts it (and Debian's real Pushgateway) as
// subprocesses on loopback, sends raw HTTP requests and reduces the JSON API
// and the /metrics exposition to a normalized, comparable form.
//
// Nothing here reaches into package main's code: the binary is driven only
// over HTTP, exactly as a pusher or Prometheus would.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/pushring/pushring/internal/poll"
	"github.com/pushring/pushring/internal/portowner"
)

const (
	// pushgatewayBin is Debian's prometheus-pushgateway (1.5.1 in bookworm).
	pushgatewayBin = "/usr/bin/prometheus-pushgateway"
	// pythonBin is Debian's python3, the one that can import the packaged
	// prometheus_client (a pyenv interpreter earlier in PATH cannot).
	pythonBin = "/usr/bin/python3"

	// envRequireReal turns "tool missing" skips into failures (CI sets it).
	envRequireReal = "PUSHRING_REQUIRE_REAL"
	// envTargets restricts the differential suite to one side, e.g.
	// PUSHRING_COMPAT_TARGETS=pushgateway to check the harness and the
	// expectations against the real Pushgateway while pushring is broken.
	envTargets = "PUSHRING_COMPAT_TARGETS"

	// envGatewayBin replaces the built binary, e.g. with another pushring
	// build, or with the Pushgateway itself to check that the suite finds no
	// difference between two identical gateways.
	envGatewayBin = "PUSHRING_GATEWAY_BIN"

	kindPushgateway = "pushgateway"
	kindPushring    = "pushring"

	// barrierJob is the job of the group the harness pushes to make sure
	// every earlier write was applied (the Pushgateway answers DELETE and
	// wipe before applying them). It is removed from every normalized state.
	barrierJob = "zz_harness_barrier"

	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
)

// requireTool skips the test when path is not an executable file, or fails
// it when CI demands the real tools.
func requireTool(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return
	}
	missing(t, fmt.Sprintf("%s not available: %v", path, err))
}

func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv(envRequireReal) == "1" {
		t.Fatalf("%s (and %s=1)", msg, envRequireReal)
	}
	t.Skip(msg)
}

var pythonClientOnce struct {
	sync.Once
	err error
}

// requirePythonClient skips (or fails under CI) unless Debian's python3 can
// import prometheus_client.
func requirePythonClient(t *testing.T) {
	t.Helper()
	requireTool(t, pythonBin)
	pythonClientOnce.Do(func() {
		out, err := exec.Command(pythonBin, "-c", "import prometheus_client").CombinedOutput()
		if err != nil {
			pythonClientOnce.err = fmt.Errorf("%s cannot import prometheus_client: %v: %s", pythonBin, err, out)
		}
	})
	if pythonClientOnce.err != nil {
		missing(t, pythonClientOnce.err.Error())
	}
}

// wantTarget reports whether the differential suite should run kind
// (PUSHRING_COMPAT_TARGETS unset means both).
func wantTarget(kind string) bool {
	v := os.Getenv(envTargets)
	if v == "" {
		return true
	}
	for _, k := range strings.Split(v, ",") {
		if strings.TrimSpace(k) == kind {
			return true
		}
	}
	return false
}

var gatewayBuild struct {
	sync.Once
	path string
	err  error
}

// buildDirPattern names the per-process directories of built binaries.
const buildDirPattern = "pushring-blackbox-*"

// gatewayBinary builds this directory's command once per test process into
// its own temporary directory (concurrent runs stay apart). Without a
// TestMain (main_test.go owns it) there is no hook after the last test, so
// each build instead removes the directories of runs older than an hour: a
// run of this suite takes seconds.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	gatewayBuild.Do(func() {
		if bin := os.Getenv(envGatewayBin); bin != "" {
			gatewayBuild.path = bin
			return
		}
		removeStaleBuilds(time.Hour)
		dir, err := os.MkdirTemp("", buildDirPattern)
		if err != nil {
			gatewayBuild.err = err
			return
		}
		bin := filepath.Join(dir, "gateway")
		args := []string{"build", "-o", bin}
		if v := os.Getenv("PUSHRING_GATEWAY_BUILDFLAGS"); v != "" { // e.g. "-race"
			args = append(args, strings.Fields(v)...)
		}
		cmd := exec.Command("go", append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			gatewayBuild.err = fmt.Errorf("go build ./cmd/pushring: %v\n%s", err, out)
			return
		}
		gatewayBuild.path = bin
	})
	require.NoError(t, gatewayBuild.err)
	return gatewayBuild.path
}

func removeStaleBuilds(age time.Duration) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), buildDirPattern))
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > age {
			_ = os.RemoveAll(d)
		}
	}
}

// gw is one running gateway process.
type gw struct {
	kind   string // kindPushgateway or kindPushring
	base   string // http://127.0.0.1:port
	client *http.Client
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	exit   error         // cmd.Wait's result; read after done is closed
	logs   *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPushgateway starts Debian's Pushgateway (skipping when it is absent).
func startPushgateway(t *testing.T, flags ...string) *gw {
	t.Helper()
	requireTool(t, pushgatewayBin)
	return startGateway(t, kindPushgateway, pushgatewayBin, flags)
}

// startPushring starts the built pushring binary.
func startPushring(t *testing.T, flags ...string) *gw {
	t.Helper()
	return startGateway(t, kindPushring, gatewayBinary(t), flags)
}

// startKind starts a gateway of the given kind.
func startKind(t *testing.T, kind string, flags ...string) *gw {
	t.Helper()
	if kind == kindPushgateway {
		return startPushgateway(t, flags...)
	}
	return startPushring(t, flags...)
}

// startGateway starts bin on a free loopback port with an empty
// --persistence.file unless flags set one (Debian's default file is shared
// state) and waits until /-/ready answers 200 and the gateway is the one
// listening there. A port lost to another process between probing and binding
// is retried on another port.
func startGateway(t *testing.T, kind, bin string, flags []string) *gw {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("start %s: %v", kind, err)
		}
		g, err := tryStart(t, kind, bin, flags, port)
		if err == nil {
			return g
		}
		lastErr = err
	}
	t.Fatalf("start %s: %v", kind, lastErr)
	return nil
}

// errPortLost is what tryStart returns when another process holds the port.
var errPortLost = errors.New("the port is held by another process")

func tryStart(t *testing.T, kind, bin string, flags []string, port int) (*gw, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"--web.listen-address=" + addr}
	if !slices.ContainsFunc(flags, func(f string) bool { return strings.HasPrefix(f, "--persistence.file=") }) {
		args = append(args, "--persistence.file=") // kingpin refuses a repeated flag
	}
	args = append(args, flags...)
	g := &gw{
		kind: kind,
		base: "http://" + addr,
		client: &http.Client{
			// Own transport: its keep-alive connections die with the
			// gateway instead of lingering in http.DefaultTransport.
			Transport: &http.Transport{},
			Timeout:   10 * time.Second,
			// The suite compares redirects themselves, so never follow them.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cmd:  exec.Command(bin, args...),
		done: make(chan struct{}),
		logs: &lockedBuffer{},
	}
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { g.exit = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() { g.stop(t) })

	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			return nil, fmt.Errorf("%s exited during startup: %s\n%s", kind, g.cmd.ProcessState, g.logs)
		default:
		}
		resp, err := g.client.Get(g.base + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// The answer is the gateway's only if it holds the
				// listener: another process may have taken the port
				// first (the Pushgateway 1.5.1 then stays up, port-less).
				switch portowner.Answerer(g.cmd.Process.Pid, port) {
				case portowner.Ours:
					return g, nil
				case portowner.Theirs:
					_ = g.cmd.Process.Kill()
					<-g.done
					return nil, fmt.Errorf("%s on %s: %w\n%s", kind, addr, errPortLost, g.logs)
				}
			}
		}
		select {
		case <-g.done:
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("%s not ready within %s\n%s", kind, startTimeout, g.logs)
}

// stop sends SIGTERM and waits for the exit; after stopTimeout it kills.
func (g *gw) stop(t *testing.T) {
	select {
	case <-g.done:
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
			// A graceful shutdown exits 0 (the Pushgateway does too).
			if g.exit != nil && g.kind == kindPushring {
				t.Errorf("%s exited with %v after SIGTERM, want status 0", g.kind, g.exit)
			}
		case <-time.After(stopTimeout):
			_ = g.cmd.Process.Kill()
			<-g.done
			t.Errorf("%s did not exit within %s of SIGTERM", g.kind, stopTimeout)
		}
	}
	g.client.CloseIdleConnections()
	// A binary built with PUSHRING_GATEWAY_BUILDFLAGS=-race reports here.
	if strings.Contains(g.logs.String(), "WARNING: DATA RACE") {
		t.Errorf("%s reported a data race", g.kind)
	}
	if t.Failed() {
		t.Logf("%s output:\n%s", g.kind, tail(g.logs.String(), 8000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// handedOut holds every port freePort has returned in this test binary.
// Parallel subtests probe ports at the same time, and the kernel readily
// gives a just-closed port to the next probe; without this two gateways of
// one run could be told the same port.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort asks the kernel for an unused loopback port that this test
// binary has not handed out before. Another process may still take it
// before the gateway binds it; tryStart notices and retries.
func freePort() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		handedOut.Lock()
		taken := handedOut.ports[port]
		handedOut.ports[port] = true
		handedOut.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, errors.New("no loopback port left that this test run has not handed out")
}

// response is what the suite compares of an HTTP answer.
type response struct {
	status int
	body   string
	header http.Header
}

// do sends one request. path is sent exactly as written (escapes included,
// no cleaning), so URL-grammar cases reach the server unchanged.
func (g *gw) do(t *testing.T, method, path string, hdr http.Header, body []byte) (int, string) {
	t.Helper()
	r := g.doResp(t, method, path, hdr, body)
	return r.status, r.body
}

func (g *gw) doResp(t *testing.T, method, path string, hdr http.Header, body []byte) response {
	t.Helper()
	u, err := url.Parse(g.base + path)
	require.NoError(t, err, "path %q", path)
	wantPath, _, _ := strings.Cut(path, "?")
	require.Equal(t, wantPath, u.EscapedPath(), "the client would rewrite path %q", path)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	require.NoError(t, err)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := g.client.Do(req)
	require.NoError(t, err, "%s %s %s", g.kind, method, path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}
}

// barrier returns once every write sent to g before it has been applied.
// The Pushgateway applies writes in FIFO order on one goroutine, answers a
// checked push only after applying it, but answers DELETE, wipe and
// unchecked pushes before; so: push an empty body to a harness group and, if
// the answer came early (202), poll until the group is visible.
func (g *gw) barrier(t *testing.T) {
	t.Helper()
	path := "/metrics/job/" + barrierJob
	st, body := g.do(t, http.MethodPut, path, nil, []byte{})
	switch st {
	case http.StatusOK, http.StatusBadRequest: // applied (or rejected after applying a failure time)
		return
	case http.StatusAccepted:
	default:
		t.Fatalf("%s barrier push: %d %s", g.kind, st, body)
	}
	eventually(t, 10*time.Second, func() error {
		st, body := g.do(t, http.MethodGet, "/api/v1/metrics", nil, nil)
		if st != http.StatusOK {
			return fmt.Errorf("GET /api/v1/metrics: %d", st)
		}
		if !strings.Contains(body, barrierJob) {
			return errors.New("barrier group not applied yet")
		}
		return nil
	})
}

// eventually waits until f returns nil.
func eventually(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	poll.Until(t, within, f)
}

// ---- request bodies ----

// hdrs builds a header from name/value pairs.
func hdrs(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// ctProto is the Content-Type client_golang's push package sends.
var ctProto = string(expfmt.NewFormat(expfmt.TypeProtoDelim))

// protoBody encodes families as client_golang's push does (expfmt
// FmtProtoDelim, default name escaping).
func protoBody(t *testing.T, fams ...*dto.MetricFamily) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, f := range fams {
		require.NoError(t, enc.Encode(f))
	}
	return b.Bytes()
}

// rawProtoBody writes delimited protobuf without any name escaping, to send
// what a broken or foreign client could send.
func rawProtoBody(t *testing.T, fams ...*dto.MetricFamily) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, f := range fams {
		_, err := protodelim.MarshalTo(&b, f)
		require.NoError(t, err)
	}
	return b.Bytes()
}

func gzipBytes(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write(p)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// lp builds label pairs from name/value pairs.
func lp(kv ...string) []*dto.LabelPair {
	var out []*dto.LabelPair
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &dto.LabelPair{Name: ptr(kv[i]), Value: ptr(kv[i+1])})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func gaugeFamily(name, help string, ms ...*dto.Metric) *dto.MetricFamily {
	return &dto.MetricFamily{Name: ptr(name), Help: ptr(help), Type: dto.MetricType_GAUGE.Enum(), Metric: ms}
}

func gaugeMetric(v float64, kv ...string) *dto.Metric {
	return &dto.Metric{Label: lp(kv...), Gauge: &dto.Gauge{Value: ptr(v)}}
}

func counterFamily(name, help string, ms ...*dto.Metric) *dto.MetricFamily {
	return &dto.MetricFamily{Name: ptr(name), Help: ptr(help), Type: dto.MetricType_COUNTER.Enum(), Metric: ms}
}

func counterMetric(v float64, kv ...string) *dto.Metric {
	return &dto.Metric{Label: lp(kv...), Counter: &dto.Counter{Value: ptr(v)}}
}

// ---- normalized state ----

// state is everything the suite compares about a gateway's contents.
type state struct {
	API    apiState
	Scrape scrapeState
}

// apiState is GET /api/v1/metrics reduced to comparable values.
type apiState struct {
	Status int
	Groups map[string]apiGroup // keyed by the sorted grouping labels
}

type apiGroup struct {
	Labels             map[string]string
	LastPushSuccessful bool
	// ExpiresAt is pushring's "expires_at" (RFC 3339), "" for a group
	// without a TTL and for every Pushgateway group.
	ExpiresAt string
	Families  map[string]apiFamily
}

type apiFamily struct {
	Type, Help string
	Metrics    []string // canonical, sorted
}

// scrapeState is GET /metrics (text) reduced to the pushed families.
type scrapeState struct {
	Status   int
	Body     string // error prefix, only when Status != 200
	Families map[string]scrapeFamily
}

type scrapeFamily struct {
	Type    string
	HasHelp bool
	Help    string
	Series  []string // canonical sample lines, sorted
}

// ownFamilyPrefixes are the gateways' own families, never compared.
var ownFamilyPrefixes = []string{"go_", "process_", "pushgateway_", "pushring_", "promhttp_"}

func isOwnFamily(name string) bool {
	for _, p := range ownFamilyPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// fetchState reads both views after a barrier.
func (g *gw) fetchState(t *testing.T) state {
	t.Helper()
	g.barrier(t)
	return state{API: g.fetchAPI(t), Scrape: g.fetchScrape(t)}
}

// groupKeyString renders grouping labels sorted by name.
func groupKeyString(ls map[string]string) string {
	return labelString(ls)
}

func labelString(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", n, ls[n])
	}
	b.WriteByte('}')
	return b.String()
}

// timeValue hides the value of the two gateway-maintained timestamps but
// keeps whether they are zero.
func timeValue(family, v string) string {
	if family != "push_time_seconds" && family != "push_failure_time_seconds" {
		return v
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return "unparsable:" + v
	}
	if f == 0 {
		return "0"
	}
	return ">0"
}

type apiMetricJSON struct {
	Labels    map[string]string `json:"labels"`
	Value     *string           `json:"value"`
	Count     *string           `json:"count"`
	Sum       *string           `json:"sum"`
	Quantiles json.RawMessage   `json:"quantiles"`
	Buckets   json.RawMessage   `json:"buckets"`
}

type apiFamilyJSON struct {
	TimeStamp string          `json:"time_stamp"`
	Type      string          `json:"type"`
	Help      string          `json:"help"`
	Metrics   []apiMetricJSON `json:"metrics"`
}

func (g *gw) fetchAPI(t *testing.T) apiState {
	t.Helper()
	st, body := g.do(t, http.MethodGet, "/api/v1/metrics", nil, nil)
	out := apiState{Status: st, Groups: map[string]apiGroup{}}
	if st != http.StatusOK {
		return out
	}
	groups, err := parseAPIMetrics([]byte(body))
	require.NoError(t, err, "%s /api/v1/metrics body: %s", g.kind, tail(body, 2000))
	out.Groups = groups
	return out
}

// parseAPIMetrics turns the JSON API answer into apiGroups, dropping the
// harness barrier group.
func parseAPIMetrics(body []byte) (map[string]apiGroup, error) {
	var doc struct {
		Status string                       `json:"status"`
		Data   []map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	if doc.Status != "success" {
		return nil, fmt.Errorf("status %q", doc.Status)
	}
	groups := map[string]apiGroup{}
	for _, raw := range doc.Data {
		grp := apiGroup{Families: map[string]apiFamily{}}
		for k, v := range raw {
			var err error
			switch k {
			case "labels":
				err = json.Unmarshal(v, &grp.Labels)
			case "last_push_successful":
				err = json.Unmarshal(v, &grp.LastPushSuccessful)
			case "expires_at":
				// A family of that name takes the key's place.
				if json.Unmarshal(v, &grp.ExpiresAt) == nil {
					break
				}
				fallthrough
			default:
				var f apiFamilyJSON
				if err = json.Unmarshal(v, &f); err == nil {
					grp.Families[k] = normalizeAPIFamily(k, f)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("group key %q: %w", k, err)
			}
		}
		if grp.Labels["job"] == barrierJob {
			continue
		}
		key := groupKeyString(grp.Labels)
		if _, dup := groups[key]; dup {
			return nil, fmt.Errorf("group %s listed twice", key)
		}
		groups[key] = grp
	}
	return groups, nil
}

func normalizeAPIFamily(name string, f apiFamilyJSON) apiFamily {
	out := apiFamily{Type: f.Type, Help: f.Help}
	for _, m := range f.Metrics {
		var b strings.Builder
		b.WriteString(labelString(m.Labels))
		if m.Value != nil {
			b.WriteString(" value=" + timeValue(name, *m.Value))
		}
		if m.Count != nil {
			b.WriteString(" count=" + *m.Count)
		}
		if m.Sum != nil {
			b.WriteString(" sum=" + *m.Sum)
		}
		if len(m.Quantiles) > 0 {
			b.WriteString(" quantiles=" + canonicalJSON(m.Quantiles))
		}
		if len(m.Buckets) > 0 {
			b.WriteString(" buckets=" + canonicalJSON(m.Buckets))
		}
		out.Metrics = append(out.Metrics, b.String())
	}
	sort.Strings(out.Metrics)
	return out
}

// canonicalJSON re-encodes JSON with sorted object keys.
func canonicalJSON(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "invalid:" + string(raw)
	}
	b, _ := json.Marshal(v) // maps are encoded with sorted keys
	return string(b)
}

func (g *gw) fetchScrape(t *testing.T) scrapeState {
	t.Helper()
	st, body := g.do(t, http.MethodGet, "/metrics", nil, nil)
	out := scrapeState{Status: st, Families: map[string]scrapeFamily{}}
	if st != http.StatusOK {
		out.Body = errorPrefix(body) // the detail carries values and Go map order
		return out
	}
	fams, err := parseScrape(body)
	require.NoError(t, err, "%s /metrics body: %s", g.kind, tail(body, 2000))
	out.Families = fams
	return out
}

// parseScrape parses text 0.0.4 and keeps the pushed families, without the
// harness barrier group's series.
func parseScrape(body string) (map[string]scrapeFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	return pushedView(mfs), nil
}

// pushedView normalizes parsed families the way parseScrape does.
func pushedView(mfs map[string]*dto.MetricFamily) map[string]scrapeFamily {
	out := map[string]scrapeFamily{}
	for name, mf := range mfs {
		if isOwnFamily(name) {
			continue
		}
		// The text format cannot tell an empty HELP from none.
		f := scrapeFamily{Type: mf.GetType().String(), HasHelp: mf.GetHelp() != "", Help: mf.GetHelp()}
		for _, m := range mf.GetMetric() {
			if labelValue(m, "job") == barrierJob {
				continue
			}
			f.Series = append(f.Series, sampleLines(name, mf.GetType(), m)...)
		}
		if len(f.Series) == 0 {
			continue
		}
		sort.Strings(f.Series)
		out[name] = f
	}
	return out
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func fmtFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// sampleLines renders one metric as the sample lines of its exposition, with
// timestamps dropped and the push-time values hidden.
func sampleLines(name string, typ dto.MetricType, m *dto.Metric) []string {
	ls := map[string]string{}
	for _, l := range m.GetLabel() {
		ls[l.GetName()] = l.GetValue()
	}
	line := func(suffix string, extra map[string]string, v float64) string {
		all := map[string]string{}
		for k, v := range ls {
			all[k] = v
		}
		for k, v := range extra {
			all[k] = v
		}
		return name + suffix + labelString(all) + " " + timeValue(name, fmtFloat(v))
	}
	switch typ {
	case dto.MetricType_COUNTER:
		return []string{line("", nil, m.GetCounter().GetValue())}
	case dto.MetricType_GAUGE:
		return []string{line("", nil, m.GetGauge().GetValue())}
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		out := []string{line("_sum", nil, s.GetSampleSum()), line("_count", nil, float64(s.GetSampleCount()))}
		for _, q := range s.GetQuantile() {
			out = append(out, line("", map[string]string{"quantile": fmtFloat(q.GetQuantile())}, q.GetValue()))
		}
		return out
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		out := []string{line("_sum", nil, h.GetSampleSum()), line("_count", nil, float64(h.GetSampleCount()))}
		inf := false
		for _, b := range h.GetBucket() {
			out = append(out, line("_bucket", map[string]string{"le": fmtFloat(b.GetUpperBound())}, float64(b.GetCumulativeCount())))
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !inf { // protobuf leaves the +Inf bucket implicit; text writes it
			out = append(out, line("_bucket", map[string]string{"le": "+Inf"}, float64(h.GetSampleCount())))
		}
		return out
	default:
		return []string{line("", nil, m.GetUntyped().GetValue())}
	}
}

// helpPresenceOnly blanks HELP texts of the scrape view, keeping whether a
// HELP line exists: the Pushgateway picks a random HELP among groups.
func (s state) helpPresenceOnly() state {
	fams := map[string]scrapeFamily{}
	for n, f := range s.Scrape.Families {
		if f.HasHelp {
			f.Help = "<present>"
		}
		fams[n] = f
	}
	s.Scrape.Families = fams
	return s
}

// errorPrefix is what the suite compares of an error body: everything up to
// the first ':' (the detail after it carries protobuf text whose spacing
// differs between library versions, or Go map order), trimmed.
func errorPrefix(body string) string {
	p, _, _ := strings.Cut(body, ":")
	return strings.TrimSpace(p)
}

// allowSet normalizes an Allow header to a sorted method list.
func allowSet(h http.Header) string {
	var ms []string
	for _, v := range h.Values("Allow") {
		for _, m := range strings.Split(v, ",") {
			if m = strings.TrimSpace(m); m != "" {
				ms = append(ms, m)
			}
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, ",")
}

// TestCompatHarnessNormalization pins what the normalizers keep and drop:
// they must hide only timestamps, never a difference the suite compares.
// TestHarnessNotFooledByPortHolder gives each gateway a port that another
// server already holds and answers /-/ready on: the harness must see that
// the gateway lost the port instead of taking the holder's answer for the
// gateway's (a CI run once compared pushring with another test's pushring).
func TestHarnessNotFooledByPortHolder(t *testing.T) {
	t.Parallel()
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "OK")
	})}
	go func() { _ = srv.Serve(holder) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := holder.Addr().(*net.TCPAddr).Port
	// The Pushgateway 1.5.1 logs the lost port and exits, but not at once:
	// the holder may answer its /-/ready first, and only the owner check
	// tells. Either sign is a refusal; pushring exits.
	t.Run(kindPushgateway, func(t *testing.T) {
		requireTool(t, pushgatewayBin)
		g, err := tryStart(t, kindPushgateway, pushgatewayBin, nil, port)
		require.Error(t, err)
		require.True(t, errors.Is(err, errPortLost) || strings.Contains(err.Error(), "exited during startup"), "%v", err)
		require.Nil(t, g)
	})
	t.Run(kindPushring, func(t *testing.T) {
		g, err := tryStart(t, kindPushring, gatewayBinary(t), nil, port)
		require.Error(t, err)
		require.Nil(t, g)
	})
}

func TestCompatHarnessNormalization(t *testing.T) {
	t.Parallel()
	t.Run("api", func(t *testing.T) {
		body := `{"status":"success","data":[
		 {"labels":{"job":"j","a":"1"},"last_push_successful":false,
		  "push_time_seconds":{"time_stamp":"2026-01-01T00:00:00Z","type":"GAUGE","help":"h","metrics":[{"labels":{"job":"j"},"value":"0"}]},
		  "push_failure_time_seconds":{"time_stamp":"x","type":"GAUGE","metrics":[{"labels":{"job":"j"},"value":"1.7e+09"}]},
		  "s":{"time_stamp":"y","type":"SUMMARY","metrics":[{"labels":{"b":"2","a":"1"},"quantiles":{"0.9":"2","0.5":"1"},"count":"2","sum":"3"}]}},
		 {"labels":{"job":"` + barrierJob + `"},"last_push_successful":true}]}`
		groups, err := parseAPIMetrics([]byte(body))
		require.NoError(t, err)
		require.Equal(t, map[string]apiGroup{`{a="1",job="j"}`: {
			Labels:             map[string]string{"job": "j", "a": "1"},
			LastPushSuccessful: false,
			Families: map[string]apiFamily{
				"push_time_seconds":         {Type: "GAUGE", Help: "h", Metrics: []string{`{job="j"} value=0`}},
				"push_failure_time_seconds": {Type: "GAUGE", Metrics: []string{`{job="j"} value=>0`}},
				"s":                         {Type: "SUMMARY", Metrics: []string{`{a="1",b="2"} count=2 sum=3 quantiles={"0.5":"1","0.9":"2"}`}},
			},
		}}, groups)
	})
	t.Run("expires_at", func(t *testing.T) {
		body := `{"status":"success","data":[
		 {"labels":{"job":"ttl"},"last_push_successful":true,"expires_at":"2026-01-01T01:00:00.5Z"},
		 {"labels":{"job":"fam"},"last_push_successful":true,
		  "expires_at":{"time_stamp":"t","type":"GAUGE","metrics":[{"labels":{"job":"fam"},"value":"1"}]}}]}`
		groups, err := parseAPIMetrics([]byte(body))
		require.NoError(t, err)
		require.Equal(t, map[string]apiGroup{
			`{job="ttl"}`: {Labels: map[string]string{"job": "ttl"}, LastPushSuccessful: true,
				ExpiresAt: "2026-01-01T01:00:00.5Z", Families: map[string]apiFamily{}},
			`{job="fam"}`: {Labels: map[string]string{"job": "fam"}, LastPushSuccessful: true,
				Families: map[string]apiFamily{"expires_at": {Type: "GAUGE", Metrics: []string{`{job="fam"} value=1`}}}},
		}, groups)
	})
	t.Run("scrape", func(t *testing.T) {
		body := "# HELP h help\n# TYPE h histogram\nh_bucket{le=\"1\",job=\"j\"} 1\nh_bucket{le=\"+Inf\",job=\"j\"} 2\nh_sum{job=\"j\"} 3\nh_count{job=\"j\"} 2\n" +
			"push_time_seconds{job=\"j\"} 1.7e+09 1700000000000\npush_time_seconds{job=\"" + barrierJob + "\"} 1\n" +
			"go_goroutines 7\npushring_x 1\nm{job=\"j\"} NaN\n"
		fams, err := parseScrape(body)
		require.NoError(t, err)
		require.Equal(t, map[string]scrapeFamily{
			"h": {Type: "HISTOGRAM", HasHelp: true, Help: "help", Series: []string{
				`h_bucket{job="j",le="+Inf"} 2`, `h_bucket{job="j",le="1"} 1`, `h_count{job="j"} 2`, `h_sum{job="j"} 3`}},
			"push_time_seconds": {Type: "UNTYPED", Series: []string{`push_time_seconds{job="j"} >0`}},
			"m":                 {Type: "UNTYPED", Series: []string{`m{job="j"} NaN`}},
		}, fams)
	})
	t.Run("error prefix", func(t *testing.T) {
		for in, want := range map[string]string{
			"pushed metrics are invalid or inconsistent with existing metrics: collected metric \"m\" {...}\n": "pushed metrics are invalid or inconsistent with existing metrics",
			"odd number of components in label string \"/a\"\n":                                                `odd number of components in label string "/a"`,
			"": "",
		} {
			require.Equal(t, want, errorPrefix(in))
		}
	})
}
