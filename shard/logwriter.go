package shard

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
)

// logWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// slog records at the level their prefix names. memberlist writes through a
// *log.Logger, which calls Write once per line. Once this peer is closing
// (closing is set), memberlist's complaints about sockets it is shutting
// down itself, or about peers that stop at the same moment, are expected:
// they are logged at debug, so a clean stop logs no error.
type logWriter struct {
	logger  *slog.Logger
	closing *atomic.Bool // nil: never closing
}

// levelPrefixes maps memberlist's level prefixes onto slog levels. A line
// without one is logged at Info.
var levelPrefixes = []struct {
	prefix []byte
	level  slog.Level
}{
	{[]byte("[DEBUG]"), slog.LevelDebug},
	{[]byte("[INFO]"), slog.LevelInfo},
	{[]byte("[WARN]"), slog.LevelWarn},
	{[]byte("[ERR]"), slog.LevelError},
	{[]byte("[ERROR]"), slog.LevelError},
}

// Write logs one line and never fails: memberlist must not stall on its log.
func (w logWriter) Write(p []byte) (int, error) {
	level, msg := parseLogLine(p)
	if w.closing != nil && w.closing.Load() && level > slog.LevelDebug {
		level = slog.LevelDebug
	}
	if msg != "" && w.logger.Enabled(context.Background(), level) {
		w.logger.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

// parseLogLine returns the level of a memberlist log line and its message
// without the level prefix, the "memberlist: " tag and the newline.
func parseLogLine(p []byte) (slog.Level, string) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lp := range levelPrefixes {
		if rest, ok := bytes.CutPrefix(line, lp.prefix); ok {
			level, line = lp.level, bytes.TrimSpace(rest)
			break
		}
	}
	line, _ = bytes.CutPrefix(line, []byte("memberlist: "))
	return level, string(line)
}
