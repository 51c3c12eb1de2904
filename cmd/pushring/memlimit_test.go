package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeCgroup writes content to rel under a temporary root.
func fakeCgroup(t *testing.T, rel, content string) string {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return root
}

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		name, rel, content string
		want               int64
		wantErr            bool
	}{
		{"v2 limit", "sys/fs/cgroup/memory.max", "2147483648\n", 2 << 30, false},
		{"v2 no limit", "sys/fs/cgroup/memory.max", "max\n", 0, false},
		{"v1 limit", "sys/fs/cgroup/memory/memory.limit_in_bytes", "1073741824\n", 1 << 30, false},
		{"v1 no limit", "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n", 0, false},
		{"garbage", "sys/fs/cgroup/memory.max", "lots\n", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, file, err := cgroupMemoryLimit(fakeCgroup(t, tt.rel, tt.content))
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Contains(t, file, tt.rel)
		})
	}
	_, _, err := cgroupMemoryLimit(t.TempDir())
	require.ErrorContains(t, err, "neither cgroup v2 memory.max nor cgroup v1 memory.limit_in_bytes exists")
}

// Not parallel: it sets the process's memory limit and environment.
func TestSetMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	t.Setenv("GOMEMLIMIT", "")
	got := setMemoryLimit(fakeCgroup(t, "sys/fs/cgroup/memory.max", "2147483648\n"), logger)
	want := float64(2 << 30)
	require.Equal(t, int64(want*memLimitShare), got)
	require.Equal(t, got, debug.SetMemoryLimit(-1))
	require.Contains(t, logs.String(), "GOMEMLIMIT set from the container's memory limit")
	require.Contains(t, logs.String(), "container_limit_bytes=2147483648")

	logs.Reset()
	debug.SetMemoryLimit(1 << 40)
	t.Setenv("GOMEMLIMIT", "1TiB")
	require.Equal(t, int64(1<<40), setMemoryLimit(fakeCgroup(t, "sys/fs/cgroup/memory.max", "2147483648\n"), logger),
		"the operator's GOMEMLIMIT wins")
	require.Contains(t, logs.String(), "GOMEMLIMIT set by the operator")
}

// Not parallel: it sets the process's GC target and environment.
func TestSetGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	// target returns the GC target in force and puts sentinel in its place.
	const sentinel = 123
	target := func() int { return debug.SetGCPercent(sentinel) }
	debug.SetGCPercent(sentinel)

	for _, tt := range []struct {
		name, env string
		flag      int
		flagGiven bool
		want      int
		log       string
	}{
		{"nothing set", "", 0, false, defaultGCPercent, "GOGC set"},
		{"GOGC from the environment", "200", 0, false, sentinel, "GOGC set by the operator"},
		{"the flag over GOGC", "200", 80, true, 80, "flag=true"},
		{"the flag alone", "", 30, true, 30, "gc_percent=30"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			t.Setenv("GOGC", tt.env)
			setGCPercent(tt.flag, tt.flagGiven, logger)
			require.Equal(t, tt.want, target())
			require.Contains(t, logs.String(), tt.log)
		})
	}
}

func TestGCPercentFlag(t *testing.T) {
	err := run(t.Context(), []string{"--runtime.gogc=0"}, io.Discard, io.Discard)
	require.EqualError(t, err, "invalid --runtime.gogc 0: must be at least 1")
}
