package main

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMigrateFromDebianPushgateway runs the steps docs/migration.md gives
// for a Debian host: the Pushgateway persists its groups on SIGTERM, and
// pushring, started on the same file with --persistence.file (which Debian
// sets by default and pushring does not), serves them. Started without the
// flag, pushring starts empty: the trap the migration checklist warns of.
func TestMigrateFromDebianPushgateway(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pushgateway.data") // Debian: /var/lib/prometheus/pushgateway.data
	pg := startPushgateway(t, "--persistence.file="+file)
	text := http.Header{"Content-Type": {"text/plain; version=0.0.4"}}
	status, body := pg.do(t, http.MethodPut, "/metrics/job/backup/instance/db-1", text,
		[]byte("# TYPE backup_bytes_total counter\nbackup_bytes_total 123456\n"))
	require.Equalf(t, http.StatusOK, status, "%s", body)
	// A label value with a slash travels base64-encoded in the URL.
	status, body = pg.do(t, http.MethodPut, "/metrics/job/cleanup/path@base64/L3Zhci9iYWNrdXBz", text,
		[]byte("# TYPE cleanup_last_run_timestamp_seconds gauge\ncleanup_last_run_timestamp_seconds 1.7e+09\n"))
	require.Equalf(t, http.StatusOK, status, "%s", body)
	pg.stop(t) // the Pushgateway writes its file on SIGTERM

	empty := startPushring(t) // the swapped binary with Debian's empty ARGS
	_, scrape := empty.do(t, http.MethodGet, "/metrics", nil, nil)
	require.NotContains(t, scrape, "backup_bytes_total", "pushring persists nowhere unless told")
	empty.stop(t)

	pr := startPushring(t, "--persistence.file="+file)
	defer pr.stop(t)
	status, scrape = pr.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, scrape, `backup_bytes_total{instance="db-1",job="backup"} 123456`)
	require.Contains(t, scrape, `cleanup_last_run_timestamp_seconds{instance="",job="cleanup",path="/var/backups"} 1.7e+09`)
}
