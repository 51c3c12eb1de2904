package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// memLimitShare is the part of the container's memory limit given to the Go
// heap as GOMEMLIMIT: the rest is for goroutine stacks, the runtime's own
// structures and the kernel's accounting of page cache, so the garbage
// collector works harder before the kernel kills the process.
const memLimitShare = 0.9

// defaultGCPercent is the garbage collector's target (GOGC) a peer runs
// with unless the operator chose one: the heap may grow by half its live
// size between collections, not by all of it. A peer's heap is mostly its
// store, which lives long; a push leaves behind garbage of the order of
// its body. Go's default of 100 lets the process hold up to twice the
// store, and the RSS a peer reaches after filling is wherever the last
// cycle left it between one and two stores. At 50 the collector runs
// twice as often, on a heap of which most is live; BENCHMARKS.md has what
// this costs and saves. Prometheus made the same change of its default in
// 2.53 for the same reason.
const defaultGCPercent = 50

// flagGCPercent sets the garbage collector's target.
const flagGCPercent = "runtime.gogc"

// setGCPercent sets the garbage collector's target and logs what it did:
// to pct if the operator gave --runtime.gogc, else leaves a GOGC from the
// environment in force, else sets defaultGCPercent.
func setGCPercent(pct int, flagGiven bool, logger *slog.Logger) {
	if !flagGiven {
		if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
			logger.Info("GOGC set by the operator", "gogc", v)
			return
		}
		pct = defaultGCPercent
	}
	debug.SetGCPercent(pct)
	logger.Info("GOGC set", "gc_percent", pct, "flag", flagGiven)
}

// Where the memory limit of the process's container is read from: cgroup
// v2's unified hierarchy first, then v1's memory controller. In a
// container, the cgroup namespace makes its own cgroup the root.
var cgroupLimitFiles = []string{
	"sys/fs/cgroup/memory.max",
	"sys/fs/cgroup/memory/memory.limit_in_bytes",
}

// unlimitedCgroup is where cgroup v1 reports "no limit" (a page-rounded
// MaxInt64); any larger value is no limit either.
const unlimitedCgroup = 1 << 62

// setMemoryLimit sets the Go memory limit to memLimitShare of the
// container's memory limit, unless the operator set GOMEMLIMIT (to a size,
// or "off"), and logs what it did. root is "/" except in tests. It returns
// the limit in force (math.MaxInt64 for none).
func setMemoryLimit(root string, logger *slog.Logger) int64 {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		limit := debug.SetMemoryLimit(-1)
		logger.Info("GOMEMLIMIT set by the operator", "gomemlimit", v, "limit_bytes", limit)
		return limit
	}
	limit, file, err := cgroupMemoryLimit(root)
	if err != nil {
		logger.Warn("no container memory limit read; GOMEMLIMIT left unset", "err", err)
		return debug.SetMemoryLimit(-1)
	}
	if limit == 0 {
		logger.Info("the container has no memory limit; GOMEMLIMIT left unset", "file", file)
		return debug.SetMemoryLimit(-1)
	}
	gomem := int64(float64(limit) * memLimitShare)
	debug.SetMemoryLimit(gomem)
	logger.Info("GOMEMLIMIT set from the container's memory limit", "file", file,
		"container_limit_bytes", limit, "gomemlimit_bytes", gomem)
	return gomem
}

// cgroupMemoryLimit returns the memory limit of the cgroup the process runs
// in and the file it came from; 0 means the cgroup has no limit.
func cgroupMemoryLimit(root string) (int64, string, error) {
	for _, rel := range cgroupLimitFiles {
		file := filepath.Join(root, rel)
		b, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, file, err
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, file, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, file, fmt.Errorf("%s: unexpected content %q", file, s)
		}
		if n >= unlimitedCgroup {
			return 0, file, nil
		}
		return n, file, nil
	}
	return 0, "", errors.New("neither cgroup v2 memory.max nor cgroup v1 memory.limit_in_bytes exists")
}
