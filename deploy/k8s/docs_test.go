package k8s_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var docPath = regexp.MustCompile(`deploy/k8s(/[A-Za-z0-9_.-]+)*`)

// docs/kubernetes.md names paths under deploy/k8s and every Prometheus
// example; a rename must update it.
func TestDocsReferToExistingFiles(t *testing.T) {
	root := moduleRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "docs", "kubernetes.md"))
	require.NoError(t, err)
	text := string(data)

	paths := docPath.FindAllString(text, -1)
	require.NotEmpty(t, paths)
	for _, p := range paths {
		_, err := os.Stat(filepath.Join(root, strings.TrimSuffix(p, ".")))
		require.NoErrorf(t, err, "docs/kubernetes.md names %s", p)
	}

	examples, err := os.ReadDir(promDir)
	require.NoError(t, err)
	for _, e := range examples {
		require.Containsf(t, text, e.Name(), "docs/kubernetes.md does not mention %s/%s", promDir, e.Name())
	}
}
