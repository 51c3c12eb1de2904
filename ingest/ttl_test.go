package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

func TestTTLHeaderKey(t *testing.T) {
	// net/http files the header under this key, whatever case the client sent.
	require.Equal(t, "Pushring-Ttl", ttlHeaderKey)
	require.Equal(t, ttlHeaderKey, textproto.CanonicalMIMEHeaderKey("pushring-ttl"))
}

func TestParseTTLHeader(t *testing.T) {
	tests := []struct {
		name    string
		vals    []string
		want    time.Duration
		wantErr string
	}{
		{"seconds", []string{"90s"}, 90 * time.Second, ""},
		{"minutes", []string{"5m"}, 5 * time.Minute, ""},
		{"compound", []string{"1h30m"}, 90 * time.Minute, ""},
		{"fraction", []string{"1.5h"}, 90 * time.Minute, ""},
		{"zero means never", []string{"0"}, 0, ""},
		{"days", []string{"2d"}, 48 * time.Hour, ""},
		{"weeks", []string{"1w"}, 7 * 24 * time.Hour, ""},
		{"days and hours", []string{"1d12h"}, 36 * time.Hour, ""},
		{"year", []string{"1y"}, 365 * 24 * time.Hour, ""},
		{"zero with unit", []string{"0s"}, 0, ""},
		{"the maximum", []string{"87600h"}, MaxTTL, ""},
		{"negative", []string{"-5m"}, 0, `invalid Pushring-TTL header "-5m": negative; use 0 for a group that never expires`},
		{"garbage", []string{"abc"}, 0, `invalid Pushring-TTL header "abc": not a duration such as 90s, 5m, 1h30m, 2d or 1w`},
		{"no unit", []string{"600"}, 0, `invalid Pushring-TTL header "600": not a duration such as 90s, 5m, 1h30m, 2d or 1w`},
		{"empty", []string{""}, 0, `invalid Pushring-TTL header "": not a duration such as 90s, 5m, 1h30m, 2d or 1w`},
		{"just over the maximum", []string{"87600h1ns"}, 0,
			`invalid Pushring-TTL header "87600h1ns": longer than the maximum of 87600h0m0s (10 years); use 0 for a group that never expires`},
		{"huge", []string{"1000000h"}, 0,
			`invalid Pushring-TTL header "1000000h": longer than the maximum of 87600h0m0s (10 years); use 0 for a group that never expires`},
		{"overflows a duration", []string{"3000000h"}, 0, `invalid Pushring-TTL header "3000000h": not a duration such as 90s, 5m, 1h30m, 2d or 1w`},
		{"sent twice", []string{"1m", "2m"}, 0, `invalid Pushring-TTL header "1m, 2m": sent 2 times; send it once`},
		{"long garbage is cut", []string{strings.Repeat("x", 1000)}, 0,
			`invalid Pushring-TTL header "` + strings.Repeat("x", maxShown) + `"...: not a duration such as 90s, 5m, 1h30m, 2d or 1w`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTTLHeader(tt.vals)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				return
			}
			require.EqualError(t, err, tt.wantErr)
			require.Equal(t, http.StatusBadRequest, statusOf(err))
		})
	}
}

const precedenceRules = `
rules:
  - job: "batch-.*"
    ttl: 10m
  - job: edge
    labels:
      instance: "edge-.*"
    ttl: 2m
  - job: forever
    ttl: 0
`

// The header beats the rules, which beat --push.ttl; 0 anywhere in that
// order means "never" and is not skipped over.
func TestTTLPrecedence(t *testing.T) {
	file := writeRules(t, t.TempDir(), precedenceRules)
	tests := []struct {
		name    string
		key     map[string]string
		header  []string
		want    time.Duration
		wantErr string
	}{
		{"header beats a rule", map[string]string{"job": "batch-1"}, []string{"30s"}, 30 * time.Second, ""},
		{"header zero beats a rule", map[string]string{"job": "batch-1"}, []string{"0"}, 0, ""},
		{"header zero beats the default", map[string]string{"job": "other"}, []string{"0"}, 0, ""},
		{"header beats the default", map[string]string{"job": "other"}, []string{"3h"}, 3 * time.Hour, ""},
		{"bad header is an error even with a rule", map[string]string{"job": "batch-1"}, []string{"-1s"}, 0,
			`invalid Pushring-TTL header "-1s": negative; use 0 for a group that never expires`},
		{"job rule", map[string]string{"job": "batch-1"}, nil, 10 * time.Minute, ""},
		{"job and label rule", map[string]string{"job": "edge", "instance": "edge-1"}, nil, 2 * time.Minute, ""},
		{"label rule not matching falls to the default", map[string]string{"job": "edge", "instance": "core-1"}, nil, time.Hour, ""},
		{"rule zero beats the default", map[string]string{"job": "forever"}, nil, 0, ""},
		{"no rule: the default", map[string]string{"job": "other"}, nil, time.Hour, ""},
	}
	in, _ := newTestIngester(t, Config{TTL: time.Hour, TTLRulesFile: file}, &fakeStore{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := in.ttlFor(store.NewGroupKey(tt.key).Labels(), tt.header)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// Handle gives the store the resolved TTL, read from the header whatever
// case the client spelt it in.
func TestHandlePushTTL(t *testing.T) {
	file := writeRules(t, t.TempDir(), precedenceRules)
	tests := []struct {
		name   string
		path   string
		header http.Header
		want   time.Duration
	}{
		{"header", "/job/batch-1", http.Header{"Pushring-Ttl": {"45s"}}, 45 * time.Second},
		{"rule", "/job/edge/instance/edge-9", nil, 2 * time.Minute},
		{"default", "/job/other", nil, 7 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStore{}
			in, _ := newTestIngester(t, Config{TTL: 7 * time.Minute, TTLRulesFile: file}, st)
			req := put(tt.path, "m 1\n")
			req.Header = tt.header
			_, err := in.Handle(context.Background(), req)
			require.NoError(t, err)
			require.Len(t, st.pushes, 1)
			require.Equal(t, tt.want, st.pushes[0].TTL)
		})
	}
	t.Run("lower-case header through net/http", func(t *testing.T) {
		h := http.Header{}
		h.Add("pushring-ttl", "12s")
		st := &fakeStore{}
		in, _ := newTestIngester(t, Config{}, st)
		req := put("/job/j", "m 1\n")
		req.Header = h
		_, err := in.Handle(context.Background(), req)
		require.NoError(t, err)
		require.Equal(t, 12*time.Second, st.pushes[0].TTL)
	})
}

// A broken rules file at start-up is a start-up error.
func TestNewRulesFile(t *testing.T) {
	dir := t.TempDir()
	bad := writeRules(t, dir, "rules:\n  - job: \"(\"\n    ttl: 1m\n")
	_, err := New(Config{TTLRulesFile: bad}, &fakeStore{}, nil, nil, nil)
	require.EqualError(t, err, `ingest: load --push.ttl-rules-file="`+bad+"\": rules[0].job: invalid regex \"(\": error parsing regexp: missing closing ): `(`")

	_, err = New(Config{TTLRulesFile: filepath.Join(dir, "nope.yml")}, &fakeStore{}, nil, nil, nil)
	require.ErrorIs(t, err, os.ErrNotExist)

	good := writeRules(t, dir, precedenceRules)
	in, reg := newTestIngester(t, Config{TTLRulesFile: good}, &fakeStore{})
	require.Equal(t, 3, in.rules.Load().len())
	require.Equal(t, unixSeconds(testNow), gaugeValue(t, reg, "pushring_ttl_rules_last_reload_success_timestamp_seconds"))
	require.Equal(t, 0.0, counterValue(t, reg, "pushring_ttl_rules_reloads_total", "result", "success"))
}

func TestReloadRules(t *testing.T) {
	dir := t.TempDir()
	file := writeRules(t, dir, "rules:\n  - job: j\n    ttl: 1m\n")
	now := testNow
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	in, err := New(Config{TTL: time.Hour, TTLRulesFile: file}, &fakeStore{}, func() time.Time { return now },
		slog.New(slog.NewTextHandler(&logs, nil)), reg)
	require.NoError(t, err)
	key := store.NewGroupKey(map[string]string{"job": "j"}).Labels()
	requireTTL := func(want time.Duration) {
		t.Helper()
		got, err := in.ttlFor(key, nil)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	requireReloads := func(success, failure float64) {
		t.Helper()
		require.Equal(t, success, counterValue(t, reg, "pushring_ttl_rules_reloads_total", "result", "success"))
		require.Equal(t, failure, counterValue(t, reg, "pushring_ttl_rules_reloads_total", "result", "failure"))
	}
	requireLastOK := func(want float64) {
		t.Helper()
		require.Equal(t, want, gaugeValue(t, reg, "pushring_rules_last_reload_successful"))
	}
	requireTTL(time.Minute)
	requireReloads(0, 0)
	requireLastOK(1)
	loaded := unixSeconds(now)

	// A broken file keeps the old rules, says why, and counts a failure.
	now = now.Add(time.Minute)
	logs.Reset()
	writeRules(t, dir, "rules:\n  - job: j\n    ttl: 2m\n    extra: 1\n")
	err = in.ReloadRules()
	require.EqualError(t, err, `reload TTL rules: load --push.ttl-rules-file="`+file+`": line 4: unknown field "extra" in a rule (a rule has job, labels and ttl)`)
	requireTTL(time.Minute)
	requireReloads(0, 1)
	requireLastOK(0)
	require.Equal(t, loaded, gaugeValue(t, reg, "pushring_ttl_rules_last_reload_success_timestamp_seconds"))
	require.Contains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "keeping the previous rules")
	require.Contains(t, logs.String(), "rules=1")

	// So does a file that went away.
	require.NoError(t, os.Remove(file))
	require.ErrorIs(t, in.ReloadRules(), os.ErrNotExist)
	requireTTL(time.Minute)
	requireReloads(0, 2)

	// A good file replaces the rules.
	now = now.Add(time.Minute)
	logs.Reset()
	writeRules(t, dir, "rules:\n  - job: x\n    ttl: 5m\n  - job: j\n    ttl: 2m\n")
	require.NoError(t, in.ReloadRules())
	requireTTL(2 * time.Minute)
	requireReloads(1, 2)
	requireLastOK(1)
	require.Equal(t, unixSeconds(now), gaugeValue(t, reg, "pushring_ttl_rules_last_reload_success_timestamp_seconds"))
	require.Contains(t, logs.String(), "level=INFO")
	require.Contains(t, logs.String(), "rules=2")

	// An empty file removes them: the default applies again.
	writeRules(t, dir, "")
	require.NoError(t, in.ReloadRules())
	requireTTL(time.Hour)
	requireReloads(2, 2)
}

// Pushes read the rules while reloads swap them (run with -race).
func TestReloadRulesConcurrent(t *testing.T) {
	dir := t.TempDir()
	file := writeRules(t, dir, "rules:\n  - job: j\n    ttl: 1m\n")
	st := &fakeStore{}
	in, _ := newTestIngester(t, Config{TTLRulesFile: file}, st)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 20 {
			assert.NoError(t, in.ReloadRules())
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 50 {
				_, err := in.Handle(context.Background(), put("/job/j", "m 1\n"))
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.Len(t, st.pushes, 100)
	for _, p := range st.pushes {
		require.Equal(t, time.Minute, p.TTL)
	}
}

func TestCountOverloaded(t *testing.T) {
	in, reg := newTestIngester(t, Config{}, &fakeStore{})
	in.CountOverloaded()
	requireRejected(t, reg, reasonOverloaded)
}

// gaugeValue gathers reg and returns the value of an unlabelled gauge.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
