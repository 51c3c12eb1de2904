package main

import (
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"
)

// init stamps the version from the VCS information Go records in the
// binary when the release ldflags did not (`go build` or `go install` from
// a git checkout), before main falls back to devVersion. The revision needs
// no help: prometheus/common/version reads vcs.revision itself.
//
// It is an init, not a call in main, so that every way into run (main and
// the tests' runWith) sees the same version.
func init() {
	info, ok := debug.ReadBuildInfo()
	if ok && version.Version == "" {
		version.Version = moduleVersion(info)
	}
}

// moduleVersion returns the main module's version as Go stamped it from
// the VCS (v1.2.3 for a tagged commit, a pseudo-version otherwise, with
// +dirty for a modified tree) without the leading v, as the Prometheus
// projects print theirs; "" when Go stamped none, such as under `go run`
// or in a test binary.
func moduleVersion(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		return ""
	}
	return strings.TrimPrefix(v, "v")
}
