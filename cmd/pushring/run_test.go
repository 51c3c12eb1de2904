package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/internal/poll"
	"github.com/pushring/pushring/store"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitDeadline bounds every wait of these tests; on a healthy machine each
// condition holds within milliseconds.
const waitDeadline = 15 * time.Second

// running is a run() in progress.
type running struct {
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// start runs the binary's run() with args (plus JSON logging and a loopback
// listener on a free port) and waits until it listens.
func start(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	args = append([]string{"--web.listen-address=127.0.0.1:0", "--log.format=json"}, args...)
	go func() { r.done <- run(ctx, args, io.Discard, r.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitDeadline):
			t.Error("run did not return after its context was cancelled")
		}
	})

	poll.True(t, waitDeadline, "the gateway logs that it listens", func() bool {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("run returned before listening: %v\n%s", err, r.logs.String())
		default:
		}
		r.addr = listenAddress(r.logs.String())
		return r.addr != ""
	})
	return r
}

// wait waits for run to return and returns its error.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(waitDeadline):
		t.Fatalf("run did not return\n%s", r.logs.String())
		return nil
	}
}

// listenAddress finds the address of the "listening" log line.
func listenAddress(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg     string `json:"msg"`
			Address string `json:"address"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			return line.Address
		}
	}
	return ""
}

// client never keeps connections, so no transport goroutine outlives a test.
var client = &http.Client{Timeout: waitDeadline, Transport: &http.Transport{DisableKeepAlives: true}}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestRunPushScrapeQuit runs the binary: push, scrape, JSON API, /-/quit,
// then checks the shutdown persisted the group and a restart loads it.
func TestRunPushScrapeQuit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pushring.data")
	gw := start(t, "--web.enable-lifecycle", "--persistence.file="+file, "--persistence.interval=1h")
	base := "http://" + gw.addr

	code, body := do(t, http.MethodPut, base+"/metrics/job/e2e/instance/i1", "# TYPE e2e_value gauge\ne2e_value 42\n")
	require.Equal(t, http.StatusOK, code, body)

	code, body = do(t, http.MethodGet, base+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`e2e_value{instance="i1",job="e2e"} 42`,
		`push_time_seconds{instance="i1",job="e2e"}`,
		"go_goroutines ",
		"process_start_time_seconds ",
		"pushring_build_info{",
		"pushring_http_requests_total{",
	} {
		require.Contains(t, body, want)
	}

	code, body = do(t, http.MethodGet, base+"/api/v1/status", "")
	require.Equal(t, http.StatusOK, code)
	var status struct {
		Data struct {
			Flags map[string]string `json:"flags"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &status))
	require.Equal(t, "127.0.0.1:0", status.Data.Flags["web.listen-address"])
	require.Equal(t, file, status.Data.Flags["persistence.file"])
	require.Equal(t, "1h0m0s", status.Data.Flags["persistence.interval"])

	code, body = do(t, http.MethodGet, base+"/api/v1/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"labels":{"instance":"i1","job":"e2e"}`)

	code, body = do(t, http.MethodPut, base+"/-/quit", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Requesting termination... Goodbye!", body)
	require.NoError(t, gw.wait(t))

	// The interval is an hour, so only the shutdown persist wrote the file.
	groups, err := store.ReadFile(file)
	require.NoError(t, err)
	require.Len(t, groups, 1)
	require.Equal(t, map[string]string{"instance": "i1", "job": "e2e"}, groups[0].Key.Map())

	// A restart (under a route prefix, stopped by its context as by a
	// signal) loads the group before serving, and removes the temporary
	// file a killed write left behind.
	stale := file + ".in_progress.4242"
	require.NoError(t, os.WriteFile(stale, []byte("half a file"), 0o600))
	gw = start(t, "--persistence.file="+file, "--web.route-prefix=/pg")
	require.NoFileExists(t, stale)
	code, body = do(t, http.MethodGet, "http://"+gw.addr+"/pg/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `e2e_value{instance="i1",job="e2e"} 42`)
	code, _ = do(t, http.MethodGet, "http://"+gw.addr+"/metrics", "")
	require.Equal(t, http.StatusNotFound, code)
	code, body = do(t, http.MethodPut, "http://"+gw.addr+"/pg/-/quit", "")
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "Lifecycle API is not enabled.", body)

	gw.cancel()
	require.NoError(t, gw.wait(t))
	require.Contains(t, gw.logs.String(), "persisted metrics loaded")
}

func TestRunFailsWhenTheAddressIsTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	err = run(context.Background(), []string{"--web.listen-address=" + l.Addr().String()}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "listen on "+l.Addr().String())
}

func TestRunServesEveryListenAddress(t *testing.T) {
	gw := start(t, "--web.listen-address=127.0.0.1:0")
	var addrs []string
	poll.True(t, waitDeadline, "the gateway logs every listen address", func() bool {
		addrs = addrs[:0]
		sc := bufio.NewScanner(strings.NewReader(gw.logs.String()))
		for sc.Scan() {
			if a := listenAddress(sc.Text()); a != "" {
				addrs = append(addrs, a)
			}
		}
		return len(addrs) == 2
	})
	for _, a := range addrs {
		code, body := do(t, http.MethodGet, "http://"+a+"/-/healthy", "")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "OK", body)
	}
}

// --web.config.file applies exporter-toolkit's basic auth to every route.
func TestRunWebConfigBasicAuth(t *testing.T) {
	webConfig := filepath.Join(t.TempDir(), "web.yml")
	// bcrypt (cost 4) of "s3cret".
	const users = "basic_auth_users:\n  admin: $2a$04$ghkFkohta34q2iwUci7dguzJrOpeZWsCu.vIqAQ/CGXYt5dZx.co.\n"
	require.NoError(t, os.WriteFile(webConfig, []byte(users), 0o600))
	gw := start(t, "--web.config.file="+webConfig)

	code, _ := do(t, http.MethodGet, "http://"+gw.addr+"/-/healthy", "")
	require.Equal(t, http.StatusUnauthorized, code)

	req, err := http.NewRequest(http.MethodGet, "http://"+gw.addr+"/-/healthy", nil)
	require.NoError(t, err)
	req.SetBasicAuth("admin", "s3cret")
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
