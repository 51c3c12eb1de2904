package main

// Black-box tests of group expiry: the JSON API shows each group's expiry
// time, the TTL rules file reloads on SIGHUP and on /-/reload, a broken
// file keeps the rules in force, and an expired group leaves the scrape.

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeRules writes a rules file giving job "ruled" the TTL ttl.
func writeRules(t *testing.T, file, ttl string) {
	t.Helper()
	rules := fmt.Sprintf("rules:\n  - job: ruled\n    ttl: %s\n", ttl)
	require.NoError(t, os.WriteFile(file, []byte(rules), 0o600))
}

// pushTTL pushes to job and returns the TTL the gateway gave the group: its
// expires_at minus the time of the push, bracketed by the clock before and
// after the request (0 when the group has no expires_at).
func pushTTL(t *testing.T, g *gw, job string, hdr http.Header) (lo, hi time.Duration) {
	t.Helper()
	before := time.Now()
	st, body := g.do(t, http.MethodPut, "/metrics/job/"+job, hdr, []byte("m 1\n"))
	require.Equal(t, http.StatusOK, st, body)
	after := time.Now()
	grp, ok := g.fetchAPI(t).Groups[key("job", job)]
	require.True(t, ok, "group %s not in the JSON API", job)
	if grp.ExpiresAt == "" {
		return 0, 0
	}
	at, err := time.Parse(time.RFC3339Nano, grp.ExpiresAt)
	require.NoError(t, err)
	require.Equal(t, time.UTC, at.Location(), "expires_at is UTC: %s", grp.ExpiresAt)
	// Truncation to the second on either side absorbs any rounding of the
	// push time; TTLs in these tests are hours apart.
	return at.Sub(after).Truncate(time.Second), at.Sub(before).Truncate(time.Second) + time.Second
}

// requireTTL asserts that a push to job now gets TTL want.
func requireTTL(t *testing.T, g *gw, job string, want time.Duration) {
	t.Helper()
	lo, hi := pushTTL(t, g, job, nil)
	require.True(t, lo <= want && want <= hi, "TTL of %s between %s and %s, want %s", job, lo, hi, want)
}

func TestBlackBoxTTLRulesReload(t *testing.T) {
	t.Parallel()
	rules := filepath.Join(t.TempDir(), "ttl.yml")
	writeRules(t, rules, "1h")
	g := startPushring(t, "--push.ttl-rules-file="+rules, "--push.ttl=30m", "--web.enable-lifecycle")

	requireTTL(t, g, "ruled", time.Hour)
	requireTTL(t, g, "other", 30*time.Minute) // --push.ttl
	lo, hi := pushTTL(t, g, "header", hdrs("Pushring-TTL", "0"))
	require.Zero(t, lo+hi, "a TTL of 0 never expires: no expires_at")

	// SIGHUP: the new rule applies once the signal has been handled.
	writeRules(t, rules, "2h")
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGHUP))
	eventually(t, 10*time.Second, func() error {
		if lo, _ := pushTTL(t, g, "ruled", nil); lo < 90*time.Minute {
			return fmt.Errorf("TTL still %s after SIGHUP", lo)
		}
		return nil
	})
	requireTTL(t, g, "ruled", 2*time.Hour)

	// A broken file is refused by both ways of reloading; the rules in
	// force stay, and the gateway keeps running.
	require.NoError(t, os.WriteFile(rules, []byte("rules:\n  - job: ruled\n    tll: 3h\n"), 0o600))
	st, body := g.do(t, http.MethodPost, "/-/reload", nil, nil)
	require.Equal(t, http.StatusInternalServerError, st)
	require.Contains(t, body, rules, "the error names the file")
	require.Contains(t, body, "tll", "and what is wrong in it")
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGHUP))
	eventually(t, 10*time.Second, func() error {
		if n := g.ownValue(t, "pushring_ttl_rules_reloads_total", "result", "failure"); n != 2 {
			return fmt.Errorf("%v failed reloads counted, want 2", n)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error { // the log reaches g.logs through a pipe
		if !strings.Contains(g.logs.String(), "received SIGHUP") {
			return errors.New("SIGHUP is not in the log yet")
		}
		return nil
	})
	st, _ = g.do(t, http.MethodGet, "/-/healthy", nil, nil)
	require.Equal(t, http.StatusOK, st, "SIGHUP does not stop the gateway")
	requireTTL(t, g, "ruled", 2*time.Hour)

	// Fixed, the file loads through /-/reload.
	writeRules(t, rules, "3h")
	st, body = g.do(t, http.MethodPut, "/-/reload", nil, nil)
	require.Equal(t, http.StatusOK, st, body)
	requireTTL(t, g, "ruled", 3*time.Hour)
	requireTTL(t, g, "other", 30*time.Minute)
}

func TestBlackBoxReloadNeedsLifecycle(t *testing.T) {
	t.Parallel()
	rules := filepath.Join(t.TempDir(), "ttl.yml")
	writeRules(t, rules, "1h")
	g := startPushring(t, "--push.ttl-rules-file="+rules)
	writeRules(t, rules, "2h")
	for _, m := range []string{http.MethodPost, http.MethodPut} {
		st, body := g.do(t, m, "/-/reload", nil, nil)
		require.Equal(t, http.StatusForbidden, st)
		require.Equal(t, "Lifecycle API is not enabled.", body)
	}
	requireTTL(t, g, "ruled", time.Hour)
}

// A group whose TTL runs out leaves the JSON API and the scrape; a group
// without one stays.
func TestBlackBoxGroupExpires(t *testing.T) {
	t.Parallel()
	g := startPushring(t)
	st, body := g.do(t, http.MethodPut, "/metrics/job/short", hdrs("Pushring-TTL", "1s"), []byte("short_lived 1\n"))
	require.Equal(t, http.StatusOK, st, body)
	st, body = g.do(t, http.MethodPut, "/metrics/job/forever", nil, []byte("long_lived 1\n"))
	require.Equal(t, http.StatusOK, st, body)
	require.NotEmpty(t, g.fetchAPI(t).Groups[key("job", "short")].ExpiresAt)
	require.Empty(t, g.fetchAPI(t).Groups[key("job", "forever")].ExpiresAt)

	eventually(t, 15*time.Second, func() error {
		if _, ok := g.fetchAPI(t).Groups[key("job", "short")]; ok {
			return fmt.Errorf("group short not expired yet")
		}
		return nil
	})
	s := g.fetchScrape(t)
	require.NotContains(t, s.Families, "short_lived")
	require.Contains(t, s.Families, "long_lived")
	st, body = g.do(t, http.MethodGet, "/", nil, nil)
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, body, "<dt>Expires</dt><dd>never</dd>", "the groups page shows the expiry")
}
