package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestModuleVersion(t *testing.T) {
	cases := []struct{ name, stamped, want string }{
		{"go run or a test binary", "(devel)", ""},
		{"nothing stamped", "", ""},
		{"tagged commit", "v0.2.0", "0.2.0"},
		{"commit after a tag", "v0.2.1-0.20261205145300-4c188d5abcde", "0.2.1-0.20261205145300-4c188d5abcde"},
		{"modified tree", "v0.0.0-20261205145300-4c188d5abcde+dirty", "0.0.0-20261205145300-4c188d5abcde+dirty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/pushring/pushring", Version: c.stamped}}
			require.Equal(t, c.want, moduleVersion(info))
		})
	}
}

// TestVersionOfAGitCheckoutBuild builds the binary as `go build` does in a
// git checkout, without release ldflags, and checks that --version names
// the commit it was built from and a version other than devVersion.
func TestVersionOfAGitCheckoutBuild(t *testing.T) {
	head, err := exec.CommandContext(t.Context(), "git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (git rev-parse HEAD: %v): nothing for Go to stamp", err)
	}
	top, err := exec.CommandContext(t.Context(), "git", "rev-parse", "--show-toplevel").Output()
	require.NoError(t, err)
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err == nil && !fi.IsDir() {
		t.Skip("a git worktree: Go stamps VCS information only where .git is a directory (a clone)")
	}
	bin := filepath.Join(t.TempDir(), "pushring")
	// -buildvcs=true overrides a GOFLAGS=-buildvcs=false in the environment.
	out, err := exec.CommandContext(t.Context(), "go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput()
	require.NoErrorf(t, err, "go build:\n%s", out)

	out, err = exec.CommandContext(t.Context(), bin, "--version").Output()
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(out), "\n")
	require.Contains(t, first, "revision: "+strings.TrimSpace(string(head)), "the commit built from")
	require.NotContains(t, first, "version "+devVersion+" ")
	require.Regexp(t, `^pushring, version \d+\.\d+\.\d+\S* \(`, first)
}
