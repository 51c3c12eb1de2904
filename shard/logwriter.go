package shard

import (
	"bytes"
	"context"
	"log/slog"
)

// logWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// slog records at the level their prefix names. memberlist writes through a
// *log.Logger, which calls Write once per line.
type logWriter struct {
	logger *slog.Logger
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
