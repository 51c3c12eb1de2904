// Package archtest keeps the package graph of docs/design.md: imports point
// down, the leaf packages import nothing of ours, and only the cluster (and
// the binary wiring it) speaks gRPC.
package archtest

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/pushring/pushring"

// allowed lists, for each package, the packages of ours it may import
// (directly or not). A package missing here may import nothing of ours.
var allowed = map[string][]string{
	"cmd/pushring": {"*"},
	"api":          {"ingest", "store", "internal/flagcheck", "internal/textfloat"},
	"cluster":      {"ingest", "store", "shard", "internal/flagcheck", "internal/peerpb", "internal/textfloat"},
	"ingest":       {"store", "internal/textfloat"},
	"store":        {"internal/textfloat"},
	"shard":        {"internal/flagcheck"},
	"loadtest":     {"internal/portowner"},
}

// noGRPC lists the packages that must not depend on gRPC, directly or
// not: HTTP and the meaning of a push know nothing of the peer protocol.
var noGRPC = []string{"api", "ingest", "store", "shard"}

type pkg struct {
	ImportPath string
	Deps       []string
}

func TestImportsPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Deps", module+"/...").Output()
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p pkg
		require.NoError(t, dec.Decode(&p))
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rules, ok := allowed[rel]
		if !ok {
			continue // internal/ and test-only packages
		}
		seen++
		for _, d := range p.Deps {
			if slices.Contains(noGRPC, rel) {
				require.Falsef(t, strings.HasPrefix(d, "google.golang.org/grpc"), "%s depends on %s: only the cluster speaks gRPC", rel, d)
			}
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(d, module+"/")
			require.Truef(t, permitted(rules, dep), "%s imports %s, which docs/design.md does not allow", rel, dep)
		}
	}
	require.GreaterOrEqual(t, seen, len(allowed), "go list found too few of our packages; the test would check nothing")
}

func permitted(rules []string, dep string) bool {
	for _, r := range rules {
		switch {
		case r == "*", r == dep:
			return true
		case strings.HasSuffix(r, "/") && strings.HasPrefix(dep, r):
			return true
		}
	}
	return false
}

func TestPermitted(t *testing.T) {
	require.True(t, permitted([]string{"store"}, "store"))
	require.True(t, permitted([]string{"internal/"}, "internal/peerpb"))
	require.False(t, permitted([]string{"store"}, "ingest"))
	require.False(t, permitted(nil, "store"))
}
