package k8s_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild runs kustomize's own build, the one behind `kustomize
// build` and `kubectl apply -k`, on dir, reading the disk as they do.
func kustomizeBuild(dir string) ([]byte, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	return m.AsYaml()
}

// buildComponent builds the base with the component at dir, as the
// overlay a user writes to opt in would.
func buildComponent(t *testing.T, dir string) ([]byte, error) {
	t.Helper()
	base, err := filepath.Abs(baseDir)
	require.NoError(t, err)
	component, err := filepath.Abs(dir)
	require.NoError(t, err)
	overlay := t.TempDir()
	// kustomize takes relative paths only.
	base, err = filepath.Rel(overlay, base)
	require.NoError(t, err)
	component, err = filepath.Rel(overlay, component)
	require.NoError(t, err)
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources: [" + base + "]\ncomponents: [" + component + "]\n"
	require.NoError(t, os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o600))
	return kustomizeBuild(overlay)
}

// kustomizationDirs returns every directory under deploy/k8s that holds a
// kustomization, with whether it is a component.
func kustomizationDirs(t *testing.T) map[string]bool {
	t.Helper()
	dirs := map[string]bool{}
	for _, o := range loadAll(t) {
		if k, ok := o.value.(*kustomization); ok && filepath.Base(o.file) == "kustomization.yaml" {
			dirs[filepath.Dir(o.file)] = k.Kind == "Component"
		}
	}
	return dirs
}

// built returns the strictly decoded objects kustomize builds from dir.
func built(t *testing.T, dir string, component bool) []object {
	t.Helper()
	var out []byte
	var err error
	if component {
		out, err = buildComponent(t, dir)
	} else {
		out, err = kustomizeBuild(dir)
	}
	require.NoErrorf(t, err, "kustomize build %s", dir)
	docs := splitDocuments(out)
	require.NotEmptyf(t, docs, "kustomize build %s built nothing", dir)
	objs := make([]object, len(docs))
	for i, doc := range docs {
		objs[i] = object{file: "kustomize build " + dir, value: decode(t, objs[i].file, i, doc)}
	}
	return objs
}

func TestKustomizeBuildsEveryDirectory(t *testing.T) {
	dirs := kustomizationDirs(t)
	for dir, component := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs := built(t, dir, component)
			if component {
				require.Greater(t, len(objs), len(built(t, baseDir, false)), "the component adds objects to the base")
			}
			for _, o := range objs {
				_, isKustomization := o.value.(*kustomization)
				require.False(t, isKustomization, "kustomize output holds only API objects")
			}
		})
	}
	for _, want := range []string{baseDir, persistentDir, tlsDir} {
		require.Containsf(t, dirs, want, "no kustomization in %s", want)
	}
}

// TestKustomizeRejectsAnOverlayInsideItsBase pins what the build test
// catches: the layout deploy/k8s had until the base moved to base/, an
// overlay in a subdirectory of the base it builds on.
func TestKustomizeRejectsAnOverlayInsideItsBase(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"kustomization.yaml":                     "resources: [sa.yaml]\n",
		"sa.yaml":                                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: pushring\n",
		"overlays/persistent/kustomization.yaml": "resources: [../..]\n",
	}
	for name, content := range files {
		path := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	}
	_, err := kustomizeBuild(root)
	require.NoError(t, err, "the base alone builds")
	_, err = kustomizeBuild(filepath.Join(root, "overlays/persistent"))
	require.ErrorContains(t, err, "cycle detected")
}
