package shard

import (
	"context"
	"log"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a slog.Handler that keeps the records it handles.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func TestLogWriter(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		level      slog.Level
		msg        string
	}{
		{"debug", "[DEBUG] memberlist: Stream connection from=127.0.0.1:4242", slog.LevelDebug, "Stream connection from=127.0.0.1:4242"},
		{"info", "[INFO] memberlist: Marking pushring-2 as failed", slog.LevelInfo, "Marking pushring-2 as failed"},
		{"warn", "[WARN] memberlist: Was able to connect to pushring-1 over TCP but UDP probes failed", slog.LevelWarn, "Was able to connect to pushring-1 over TCP but UDP probes failed"},
		{"err", "[ERR] memberlist: discarding stream with unacceptable label \"other\"", slog.LevelError, "discarding stream with unacceptable label \"other\""},
		{"error", "[ERROR] memberlist: something", slog.LevelError, "something"},
		{"no prefix", "plain line", slog.LevelInfo, "plain line"},
		{"no tag", "[WARN] bare warning", slog.LevelWarn, "bare warning"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			l := log.New(logWriter{logger: slog.New(rec)}, "", 0) // as memberlist gets it
			l.Print(tc.line)
			require.Len(t, rec.records, 1)
			require.Equal(t, tc.level, rec.records[0].Level)
			require.Equal(t, tc.msg, rec.records[0].Message)
		})
	}
}

func TestLogWriterSkipsDisabledAndEmpty(t *testing.T) {
	rec := &recorder{}
	w := logWriter{logger: slog.New(levelFilter{Handler: rec, min: slog.LevelInfo})}
	n, err := w.Write([]byte("[DEBUG] memberlist: chatty\n"))
	require.NoError(t, err)
	require.Equal(t, 27, n, "a writer reports the whole line written")
	_, _ = w.Write([]byte("\n"))
	_, _ = w.Write([]byte("[WARN] memberlist: kept\n"))
	require.Len(t, rec.records, 1)
	require.Equal(t, "kept", rec.records[0].Message)
}

// levelFilter drops records below min.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(_ context.Context, l slog.Level) bool { return l >= f.min }

// TestLogWriterQuietWhileClosing: once the peer closes, memberlist's
// errors about its own closed sockets are debug lines, not errors.
func TestLogWriterQuietWhileClosing(t *testing.T) {
	rec := &recorder{}
	var closing atomic.Bool
	l := log.New(logWriter{logger: slog.New(rec), closing: &closing}, "", 0)
	l.Print("[ERR] memberlist: Failed to send gossip to 127.0.0.1:1: use of closed network connection")
	closing.Store(true)
	l.Print("[ERR] memberlist: Failed to send gossip to 127.0.0.1:1: use of closed network connection")
	require.Len(t, rec.records, 2)
	require.Equal(t, slog.LevelError, rec.records[0].Level)
	require.Equal(t, slog.LevelDebug, rec.records[1].Level)
}
