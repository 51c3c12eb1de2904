package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/internal/poll"
)

// The web UI driven in Debian's chromium, headless: what an SRE does with
// it, on real gateways.

const (
	// chromiumBin is Debian's chromium; PUSHRING_CHROMIUM overrides it.
	chromiumBin = "/usr/bin/chromium"
	// browserTimeout bounds each browser test as a whole.
	browserTimeout = 90 * time.Second
	// envScreenshots set to 1 makes the tests write the screenshots of
	// docs/ui.md to docs/ui/.
	envScreenshots = "PUSHRING_UI_SCREENSHOTS"
)

// browser is one headless chromium and a tab in it.
type browser struct {
	ctx     context.Context
	dialogs atomic.Int32 // JavaScript dialogs (alert, confirm) that opened
}

// newBrowser starts chromium with a 1280×900 window, or skips (fails under
// PUSHRING_REQUIRE_REAL=1) without it. Everything it runs is bounded by
// browserTimeout; the browser is closed when the test ends.
func newBrowser(t *testing.T, header http.Header) *browser {
	t.Helper()
	bin := chromiumBin
	if v := os.Getenv("PUSHRING_CHROMIUM"); v != "" {
		bin = v
	}
	requireTool(t, bin)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(quietErrorf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		cancelTimeout()
	})
	b := &browser{ctx: tabCtx}
	chromedp.ListenTarget(tabCtx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.dialogs.Add(1)
			go func() { _ = chromedp.Run(tabCtx, page.HandleJavaScriptDialog(false)) }()
		}
	})
	actions := []chromedp.Action{network.Enable()}
	if len(header) > 0 {
		h := network.Headers{}
		for k := range header {
			h[k] = header.Get(k)
		}
		actions = append(actions, network.SetExtraHTTPHeaders(h))
	}
	require.NoError(t, chromedp.Run(tabCtx, actions...), "start %s", bin)
	return b
}

// quietErrorf logs chromedp's errors but for the DOM events of newer
// Chromium versions that this chromedp does not know (the top layer of a
// <dialog>), which it reports and ignores.
func quietErrorf(format string, args ...any) {
	if strings.HasPrefix(format, "unhandled node event") {
		return
	}
	log.Printf(format, args...)
}

func (b *browser) run(t *testing.T, actions ...chromedp.Action) {
	t.Helper()
	require.NoError(t, chromedp.Run(b.ctx, actions...))
}

// runWithin is run with the actions bounded by d, for a step that
// would otherwise wait out browserTimeout when it fails.
func (b *browser) runWithin(t *testing.T, d time.Duration, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	require.NoError(t, chromedp.Run(ctx, actions...))
}

// text returns the visible text of the first element sel matches.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	var s string
	b.run(t, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// eval evaluates a JavaScript expression.
func (b *browser) eval(t *testing.T, expr string, out any) {
	t.Helper()
	b.run(t, chromedp.Evaluate(expr, out))
}

// screenshot saves the viewport to docs/ui/<name>.png when the screenshots
// are asked for.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	if os.Getenv(envScreenshots) != "1" {
		return
	}
	var png []byte
	b.run(t, chromedp.FullScreenshot(&png, 100))
	dir := filepath.Join("..", "..", "docs", "ui")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// pushText sends a text body with PUT to path below base.
func pushText(t *testing.T, base, path, body string, header http.Header) {
	t.Helper()
	pushExpect(t, base, path, body, header, http.StatusOK)
}

// pushExpect is pushText expecting the answer code.
func pushExpect(t *testing.T, base, path, body string, header http.Header, code int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+path, strings.NewReader(body))
	require.NoError(t, err)
	for k := range header {
		req.Header.Set(k, header.Get(k))
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, code, resp.StatusCode, "push to %s", path)
}

const (
	counterBody = "# HELP jobs_processed_total Jobs the batch processed.\n# TYPE jobs_processed_total counter\njobs_processed_total{queue=\"high\"} 4711\n"
	histBody    = `# HELP job_duration_seconds How long a run took.
# TYPE job_duration_seconds histogram
job_duration_seconds_bucket{le="1"} 2
job_duration_seconds_bucket{le="10"} 5
job_duration_seconds_bucket{le="+Inf"} 6
job_duration_seconds_sum 42.25
job_duration_seconds_count 6
`
	summaryBody = `# HELP rows_copied Rows per copy.
# TYPE rows_copied summary
rows_copied{quantile="0.5"} 1250
rows_copied{quantile="0.99"} 9875.5
rows_copied_sum 73125
rows_copied_count 31
`
	scriptValue = "<script>alert(1)</script>"
)

// pushShowcase pushes a counter, a histogram and a summary, a group whose
// label value is markup, and a group whose last push failed.
func pushShowcase(t *testing.T, base string, header http.Header) {
	t.Helper()
	pushText(t, base, "/metrics/job/nightly-backup/instance/db-1", counterBody, header)
	pushText(t, base, "/metrics/job/nightly-backup/instance/db-3", "backup_size_bytes 1.5e+09\n", header)
	// jobs_processed_total is a counter in db-1's group: a gauge of the
	// name is refused, and the failure recorded in db-3's group.
	pushExpect(t, base, "/metrics/job/nightly-backup/instance/db-3", "# TYPE jobs_processed_total gauge\njobs_processed_total 1\n", header, http.StatusBadRequest)
	pushText(t, base, "/metrics/job/nightly-backup/instance/db-2", histBody, header)
	pushText(t, base, "/metrics/job/etl/instance/warehouse", summaryBody, header)
	pushText(t, base, "/metrics/job/xss/instance@base64/"+base64.URLEncoding.EncodeToString([]byte(scriptValue)), "up 1\n", header)
}

// TestUIBrowserGroups opens the groups page after pushes of a counter, a
// histogram and a summary: the DOM holds every name and value and a Delete
// control per group; a <script> label value is text; the group page shows
// HELP, TYPE, buckets and quantiles; the page fits a phone's width.
func TestUIBrowserGroups(t *testing.T) {
	gw := start(t, "--push.ttl=1h")
	base := "http://" + gw.addr
	pushShowcase(t, base, nil)
	b := newBrowser(t, nil)

	var dom string
	b.run(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#count", chromedp.ByQuery), chromedp.OuterHTML("html", &dom, chromedp.ByQuery))
	for _, want := range []string{
		"jobs_processed_total", "4711",
		"job_duration_seconds", "42.25", ">6<", "le 10",
		"rows_copied", "9875.5", "73125", ">31<",
	} {
		require.Contains(t, dom, want, "the DOM of the groups page")
	}
	require.Equal(t, 5, strings.Count(dom, `data-delete="/metrics/job/`), "a Delete control per group")
	require.Contains(t, b.text(t, "#count"), "Groups 1–5 of 5 on this peer.")

	// The failed push is highlighted with its time; the others are not.
	var failed []string
	b.eval(t, `[...document.querySelectorAll("article.group.failed")].map(e => e.dataset.key)`, &failed)
	require.Equal(t, []string{`{job="nightly-backup",instance="db-3"}`}, failed)
	require.Regexp(t, `Last push failed\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+s ago\)`, b.text(t, `article.failed .gmeta`))

	// The label value <script> is text: no script but ui.js, no alert.
	var scripts int
	b.eval(t, `document.querySelectorAll("script").length`, &scripts)
	require.Equal(t, 1, scripts)
	var shown bool
	b.eval(t, `[...document.querySelectorAll(".lv")].some(e => e.textContent === '"`+scriptValue+`"')`, &shown)
	require.True(t, shown, "the value is shown as text")
	require.Zero(t, b.dialogs.Load(), "no dialog opened")

	// Expiry: every group was pushed with the 1h TTL.
	require.Contains(t, b.text(t, `article[data-key*="db-2"] .gmeta`), "(in 59m")
	var opened bool
	b.eval(t, `document.querySelector('article[data-key*="db-2"] details').open = true`, &opened)
	b.screenshot(t, "groups")

	// Open a group and read its values.
	b.run(t, chromedp.Click(`article[data-key*="db-2"] a.open`, chromedp.ByQuery), chromedp.WaitVisible("section.family", chromedp.ByQuery))
	fam := b.text(t, "section.family")
	for _, want := range []string{"job_duration_seconds", "HISTOGRAM", "How long a run took.", "Last pushed", "le 1", "le 10", "le +Inf", "42.25", "count", "6"} {
		require.Contains(t, fam, want)
	}
	var buckets []string
	b.eval(t, `[...document.querySelectorAll("table.buckets tbody tr")].map(r => r.innerText.replace(/\s+/g, " "))`, &buckets)
	require.Equal(t, []string{"le 1 2", "le 10 5", "le +Inf 6"}, buckets)
	b.screenshot(t, "group")

	b.run(t, chromedp.Navigate(base+"/"), chromedp.Click(`article[data-key*="warehouse"] a.open`, chromedp.ByQuery), chromedp.WaitVisible("section.family", chromedp.ByQuery))
	var quantiles []string
	b.eval(t, `[...document.querySelectorAll("table.buckets tbody tr")].map(r => r.innerText.replace(/\s+/g, " "))`, &quantiles)
	require.Equal(t, []string{"0.5 1250", "0.99 9875.5"}, quantiles)
	require.Contains(t, b.text(t, "section.family"), "SUMMARY", "the type, upper-cased by the style sheet")

	// Phone width: nothing makes the page wider than the screen.
	b.run(t, emulation.SetDeviceMetricsOverride(390, 844, 2, true), chromedp.Navigate(base+"/"), chromedp.WaitVisible("#count", chromedp.ByQuery))
	var overflow int
	b.eval(t, `document.documentElement.scrollWidth - window.innerWidth`, &overflow)
	require.LessOrEqual(t, overflow, 0, "the groups page fits 390 px")
	b.screenshot(t, "groups-phone")
}

// TestUIBrowserDelete deletes a group with the button and its
// confirmation, the second time with the keyboard only, and sees the
// groups gone from /api/v1/metrics. Cancel deletes nothing.
func TestUIBrowserDelete(t *testing.T) {
	gw := start(t)
	base := "http://" + gw.addr
	pushShowcase(t, base, nil)
	b := newBrowser(t, nil)

	b.run(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#count", chromedp.ByQuery),
		chromedp.Click(`article[data-key*="db-1"] button[data-delete]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm-delete", chromedp.ByQuery))
	require.Contains(t, b.text(t, "#confirm-group"), `instance="db-1"`)
	b.screenshot(t, "delete")
	b.run(t, chromedp.Click("#confirm-cancel", chromedp.ByQuery), chromedp.WaitNotVisible("#confirm-delete", chromedp.ByQuery))
	require.Contains(t, apiMetrics(t, base), `"db-1"`, "Cancel deletes nothing")

	// A quick hand: Cancel and the next Delete in one task, so that the
	// dialog opens again before the close of the first has run; Delete
	// group then deletes the group of the second.
	var open bool
	b.run(t, chromedp.Click(`article[data-key*="db-1"] button[data-delete]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm-delete", chromedp.ByQuery))
	b.eval(t, `document.getElementById("confirm-cancel").click();
		document.querySelector('article[data-key*="db-1"] button[data-delete]').click();
		document.getElementById("confirm-delete").open`, &open)
	require.True(t, open, "the dialog is open again")
	b.runWithin(t, 20*time.Second, chromedp.Click("#confirm-ok", chromedp.ByQuery),
		chromedp.WaitNotPresent(`article[data-key*="db-1"]`, chromedp.ByQuery))
	poll.True(t, 10*time.Second, "the group is gone from /api/v1/metrics", func() bool { return !strings.Contains(apiMetrics(t, base), `"db-1"`) })

	// Escape cancels: db-2 stays (checked below, after the next delete
	// went through).
	b.run(t, chromedp.Click(`article[data-key*="db-2"] button[data-delete]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm-delete", chromedp.ByQuery),
		chromedp.KeyEvent(kb.Escape),
		chromedp.WaitNotVisible("#confirm-delete", chromedp.ByQuery))

	// Keyboard only: Tab to the Delete of the "warehouse" group, Enter,
	// Tab from Cancel to Delete group, Enter.
	b.run(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#count", chromedp.ByQuery))
	tabTo(t, b, `article[data-key*="warehouse"] button[data-delete]`)
	b.run(t, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible("#confirm-delete", chromedp.ByQuery))
	var focused string
	b.eval(t, `document.activeElement.id`, &focused)
	require.Equal(t, "confirm-cancel", focused, "the dialog opens on Cancel")
	b.run(t, chromedp.KeyEvent(kb.Tab))
	b.eval(t, `document.activeElement.id`, &focused)
	require.Equal(t, "confirm-ok", focused)
	b.run(t, chromedp.KeyEvent(kb.Enter), chromedp.WaitNotPresent(`article[data-key*="warehouse"]`, chromedp.ByQuery))
	poll.True(t, 10*time.Second, "the group is gone from /api/v1/metrics", func() bool { return !strings.Contains(apiMetrics(t, base), `"warehouse"`) })
	require.Contains(t, apiMetrics(t, base), `"db-2"`, "the other groups stay")
	var rows int
	b.eval(t, `document.querySelectorAll('article[data-key*="db-2"]').length`, &rows)
	require.Equal(t, 1, rows, "db-2's row stays")
}

// TestUIBrowserDeleteRefused shows a delete the gateway refuses in the
// dialog with the gateway's answer and offers it again; Cancel then keeps
// the group and gives the focus back to its Delete, and a second try that
// the gateway accepts removes the group.
func TestUIBrowserDeleteRefused(t *testing.T) {
	gw := start(t)
	base := "http://" + gw.addr
	pushShowcase(t, base, nil)
	b := newBrowser(t, nil)
	const del = `article[data-key*="warehouse"] button[data-delete]`

	// A path with a label name and no value: the gateway answers 400.
	var path string
	b.run(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#count", chromedp.ByQuery))
	b.eval(t, `(b => { const p = b.dataset.delete; b.dataset.delete = p + "/instance"; return p })(document.querySelector('`+del+`'))`, &path)
	b.runWithin(t, 20*time.Second, chromedp.Click(del, chromedp.ByQuery), chromedp.WaitVisible("#confirm-delete", chromedp.ByQuery),
		chromedp.Click("#confirm-ok", chromedp.ByQuery), chromedp.WaitVisible("#confirm-error", chromedp.ByQuery))
	msg := b.text(t, "#confirm-error")
	require.Contains(t, msg, "The gateway refused the delete (400)")
	require.Contains(t, msg, "odd number of components", "the gateway's own words")
	require.Contains(t, b.text(t, "#confirm-group"), `instance="warehouse"`)

	b.runWithin(t, 20*time.Second, chromedp.Click("#confirm-cancel", chromedp.ByQuery), chromedp.WaitNotVisible("#confirm-delete", chromedp.ByQuery))
	var focused bool
	poll.True(t, 10*time.Second, "the focus is back on the group's Delete", func() bool {
		b.eval(t, `document.activeElement === document.querySelector('`+del+`')`, &focused)
		return focused
	})
	require.Contains(t, apiMetrics(t, base), `"warehouse"`, "nothing deleted")

	// Refused again, then accepted from the dialog that offers it again.
	b.runWithin(t, 20*time.Second, chromedp.Click(del, chromedp.ByQuery), chromedp.WaitVisible("#confirm-delete", chromedp.ByQuery),
		chromedp.Click("#confirm-ok", chromedp.ByQuery), chromedp.WaitVisible("#confirm-error", chromedp.ByQuery))
	var ignored string
	b.eval(t, `document.querySelector('`+del+`').dataset.delete = `+fmt.Sprintf("%q", path), &ignored)
	b.runWithin(t, 20*time.Second, chromedp.Click("#confirm-ok", chromedp.ByQuery),
		chromedp.WaitNotPresent(`article[data-key*="warehouse"]`, chromedp.ByQuery))
	poll.True(t, 10*time.Second, "the group is gone from /api/v1/metrics", func() bool { return !strings.Contains(apiMetrics(t, base), `"warehouse"`) })
	require.Contains(t, apiMetrics(t, base), `"db-1"`, "the other groups stay")
}

// tabTo presses Tab until sel has the focus, at most 60 times.
func tabTo(t *testing.T, b *browser, sel string) {
	t.Helper()
	for range 60 {
		var ok bool
		b.run(t, chromedp.KeyEvent(kb.Tab))
		b.eval(t, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel), &ok)
		if ok {
			return
		}
	}
	t.Fatalf("Tab never reached %s", sel)
}

// apiMetrics is the body of GET /api/v1/metrics.
func apiMetrics(t *testing.T, base string) string {
	t.Helper()
	code, body := do(t, http.MethodGet, base+"/api/v1/metrics", "")
	require.Equal(t, http.StatusOK, code)
	return body
}

// TestUIBrowserFilterAndPages filters 30 groups by a label matcher and by
// text, and pages through them.
func TestUIBrowserFilterAndPages(t *testing.T) {
	gw := start(t)
	base := "http://" + gw.addr
	for i := range 24 {
		pushText(t, base, fmt.Sprintf("/metrics/job/batch-%d/instance/node-%02d", i%2, i), "g 1\n", nil)
	}
	for i := range 6 {
		pushText(t, base, fmt.Sprintf("/metrics/job/api/instance/web-%d", i), "g 1\n", nil)
	}
	b := newBrowser(t, nil)
	b.run(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#count", chromedp.ByQuery))
	require.Contains(t, b.text(t, "#count"), "Groups 1–30 of 30 on this peer.")

	b.run(t,
		chromedp.SendKeys(`input[name="match"]`, `job=~"batch-.*"`, chromedp.ByQuery),
		chromedp.SetValue(`input[name="limit"]`, "10", chromedp.ByQuery),
		chromedp.Submit(`form.filter`, chromedp.ByQuery),
		chromedp.WaitVisible(`a[rel="next"]`, chromedp.ByQuery))
	require.Contains(t, b.text(t, "#count"), "Groups 1–10 of 24 matching, of 30 on this peer.")
	b.screenshot(t, "filter")
	b.run(t, chromedp.Click(`a[rel="next"]`, chromedp.ByQuery), chromedp.WaitVisible(`a[rel="prev"]`, chromedp.ByQuery))
	require.Contains(t, b.text(t, "#count"), "Groups 11–20 of 24 matching")
	b.run(t, chromedp.Click(`a[rel="next"]`, chromedp.ByQuery), chromedp.WaitVisible(`a[rel="prev"]`, chromedp.ByQuery))
	require.Contains(t, b.text(t, "#count"), "Groups 21–24 of 24 matching")
	var rows int
	b.eval(t, `document.querySelectorAll("article.group").length`, &rows)
	require.Equal(t, 4, rows)

	b.run(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#count", chromedp.ByQuery),
		chromedp.SendKeys(`input[name="q"]`, "WEB-", chromedp.ByQuery),
		chromedp.Submit(`form.filter`, chromedp.ByQuery),
		chromedp.WaitVisible(`input[name="q"][value="WEB-"]`, chromedp.ByQuery))
	require.Contains(t, b.text(t, "#count"), "Groups 1–6 of 6 matching, of 30")

	b.run(t, chromedp.Navigate(base+`/?match=job%3D%22unquoted`), chromedp.WaitVisible(".error", chromedp.ByQuery))
	require.Contains(t, b.text(t, ".error"), "invalid label filter")
}

// TestUIBrowserStatusPrefixAuth serves the UI below a route prefix behind
// --web.config.file's basic auth: without credentials the browser gets
// 401; with them the status page lists the build, the flags, persistence
// and the TTL rules, and Delete works through the prefix.
func TestUIBrowserStatusPrefixAuth(t *testing.T) {
	dir := t.TempDir()
	webConfig := filepath.Join(dir, "web.yml")
	// bcrypt (cost 4) of "s3cret".
	require.NoError(t, os.WriteFile(webConfig, []byte("basic_auth_users:\n  admin: $2a$04$ghkFkohta34q2iwUci7dguzJrOpeZWsCu.vIqAQ/CGXYt5dZx.co.\n"), 0o600))
	rules := filepath.Join(dir, "ttl.yml")
	require.NoError(t, os.WriteFile(rules, []byte("rules:\n  - job: \"nightly-.*\"\n    labels:\n      instance: \"db-.*\"\n    ttl: 36h\n"), 0o600))
	persist := filepath.Join(dir, "groups.db")
	gw := start(t, "--web.config.file="+webConfig, "--web.external-url=http://gateway.example/pg/",
		"--push.ttl-rules-file="+rules, "--persistence.file="+persist, "--persistence.interval=10ms")
	base := "http://" + gw.addr + "/pg"
	auth := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))}}
	pushShowcase(t, base, auth)

	code, _ := do(t, http.MethodGet, base+"/status", "")
	require.Equal(t, http.StatusUnauthorized, code)

	b := newBrowser(t, auth)
	poll.True(t, 10*time.Second, "the status page shows the file's last write", func() bool {
		b.run(t, chromedp.Navigate(base+"/status"), chromedp.WaitVisible("#flags", chromedp.ByQuery))
		return strings.Contains(b.text(t, "#persistence-last"), "ago)")
	})
	require.Equal(t, persist, b.text(t, "#persistence-file"))
	flags := b.text(t, "#flags")
	for _, want := range []string{"--web.external-url", "http://gateway.example/pg/", "--persistence.interval", "10ms", "--push.ttl-rules-file"} {
		require.Contains(t, flags, want)
	}
	require.Contains(t, b.text(t, "#ttl-rules"), `nightly-.*`)
	require.Contains(t, b.text(t, "#ttl-rules"), `instance=~"db-.*"`)
	require.Contains(t, b.text(t, "#ttl-rules"), "36h0m0s")
	require.Contains(t, b.text(t, "#start-time"), "UTC")
	b.screenshot(t, "status")

	b.run(t, chromedp.Click(`nav a[href="/pg/"]`, chromedp.ByQuery), chromedp.WaitVisible("#count", chromedp.ByQuery),
		chromedp.Click(`article[data-key*="db-1"] a.open`, chromedp.ByQuery), chromedp.WaitVisible("section.family", chromedp.ByQuery),
		chromedp.Click(`button[data-delete]`, chromedp.ByQuery), chromedp.Click("#confirm-ok", chromedp.ByQuery),
		chromedp.WaitVisible("#count", chromedp.ByQuery))
	var loc string
	b.eval(t, "location.pathname", &loc)
	require.Equal(t, "/pg/", loc, "after the delete the browser is back on the groups list")
	require.NotContains(t, b.text(t, "main"), `"db-1"`)
}

// TestUIBrowserCluster opens the cluster page of three peers (processes,
// two copies of each group): it names all three with their addresses and
// holdings, the whole cluster's groups name the peer of each and the peer
// with its copy, and /api/v1/cluster/locate answers alike on every peer
// with the owner and the replica, the peers that hold the group. A peer
// that stops answering (SIGSTOP) is named on both pages. Probes are slow
// here so that the stopped peer stays a member while the pages are read.
func TestUIBrowserCluster(t *testing.T) {
	c := startProcCluster(t, 3, "--cluster.fanout-timeout=500ms", "--cluster.probe-interval=20s", "--cluster.replication-factor=2")
	first := c.peers[0]
	for i := range 12 {
		pushText(t, first.base, fmt.Sprintf("/metrics/job/cron/instance/host-%02d", i), "g 1\n", nil)
	}
	b := newBrowser(t, nil)
	b.run(t, chromedp.Navigate(first.base+"/cluster"), chromedp.WaitVisible("#members", chromedp.ByQuery))
	var names []string
	b.eval(t, `[...document.querySelectorAll("td.member-name")].map(e => e.firstChild.textContent.trim())`, &names)
	require.Equal(t, c.names(), names)
	members := b.text(t, "#members")
	for _, p := range c.peers {
		require.Contains(t, members, strings.TrimPrefix(p.base, "http://"), "the HTTP address of %s", p.name)
	}
	require.Contains(t, members, "ago", "time since each joined")
	var held []int
	b.eval(t, `[...document.querySelectorAll("tr.member")].map(r => Number(r.cells[5].textContent))`, &held)
	require.Len(t, held, 3)
	require.Equal(t, 24, held[0]+held[1]+held[2], "groups per peer add up to two copies of each group pushed")
	b.screenshot(t, "cluster")

	b.run(t, chromedp.Click(`a[href="/?scope=cluster"]`, chromedp.ByQuery), chromedp.WaitVisible("#count", chromedp.ByQuery))
	require.Contains(t, b.text(t, "#count"), "Groups 1–12 of 12 in the cluster.")
	var peers []string
	b.eval(t, `[...new Set([...document.querySelectorAll("dd.gpeer")].map(e => e.textContent))].sort()`, &peers)
	require.NotEmpty(t, peers)
	var copies int
	b.eval(t, `document.querySelectorAll("dd.greplicas").length`, &copies)
	require.Equal(t, 12, copies, "each group once, with the peer holding its other copy")
	b.screenshot(t, "groups-cluster")

	// A group another peer holds opens from here, with that peer named.
	var other string
	b.eval(t, `[...document.querySelectorAll("article.group")].find(a => a.querySelector("dd.gpeer").textContent !== "`+first.name+`").querySelector("a.open").href`, &other)
	b.run(t, chromedp.Navigate(other), chromedp.WaitVisible("#gpeer", chromedp.ByQuery))
	require.NotEqual(t, first.name, b.text(t, "#gpeer"))
	require.Equal(t, "g", b.text(t, ".fname"))
	require.Equal(t, "1", b.text(t, "td.value .v"))
	require.Contains(t, b.text(t, "h1"), `job="cron"`)

	for _, host := range []string{"03", "07"} {
		var owner string
		for _, p := range c.peers {
			code, body := do(t, http.MethodGet, p.base+"/api/v1/cluster/locate?job=cron&instance=host-"+host, "")
			require.Equal(t, http.StatusOK, code, body)
			var got struct{ Data locateAnswer }
			require.NoError(t, json.Unmarshal([]byte(body), &got))
			require.True(t, owner == "" || owner == got.Data.Owner, "every peer names the same owner")
			owner = got.Data.Owner
			require.Len(t, got.Data.Replicas, 1, "one copy besides the owner's")
			require.NotEqual(t, owner, got.Data.Replicas[0])
			holds := p.name == owner || p.name == got.Data.Replicas[0]
			poll.True(t, 10*time.Second, "the owner and the replica hold the group, the third peer not", func() bool {
				_, body := do(t, http.MethodGet, p.base+"/api/v1/cluster/locate?job=cron&instance=host-"+host, "")
				return strings.Contains(body, fmt.Sprintf(`"held_here":%t`, holds))
			})
		}
	}

	// A peer that does not answer.
	stopped := c.peers[2]
	require.NoError(t, stopped.cmd.Process.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = stopped.cmd.Process.Signal(syscall.SIGCONT) }) // before the peers are stopped
	b.run(t, chromedp.Navigate(first.base+"/?scope=cluster"), chromedp.WaitVisible("#count", chromedp.ByQuery))
	require.Contains(t, b.text(t, ".warning"), `Not answered: peer "`+stopped.name+`": no answer within --cluster.fanout-timeout=500ms`)
	var shownOn []string
	b.eval(t, `[...document.querySelectorAll("dd.gpeer, dd.greplicas")].map(e => e.textContent)`, &shownOn)
	require.NotContains(t, strings.Join(shownOn, ","), stopped.name, "no group is shown as held by the silent peer")
	b.run(t, chromedp.Navigate(first.base+"/cluster"), chromedp.WaitVisible("#members", chromedp.ByQuery))
	require.Contains(t, b.text(t, "tr.member.failed"), stopped.name+"\talive\ndid not answer: no answer within")
	b.screenshot(t, "cluster-unanswered")
}

// locateAnswer is the data of GET /api/v1/cluster/locate.
type locateAnswer struct {
	Owner    string   `json:"owner"`
	Replicas []string `json:"replicas"`
	HeldHere bool     `json:"held_here"`
}
