package main

import (
	"bytes"
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
