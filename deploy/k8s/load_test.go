package k8s_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/pushring/pushring/deploy/internal/manifest"
)

// object is one decoded YAML document of a file under deploy/k8s.
type object struct {
	file  string // slash-separated, relative to deploy/k8s
	value any    // a pointer to one of the types in decoders, or to jsonPatch or promConfig
}

// decoders maps "apiVersion kind" to a constructor of the type the
// document is decoded into. A document of any other kind fails the test, so
// every manifest added here is checked.
var decoders = map[string]func() any{
	"apps/v1 StatefulSet":                           func() any { return new(appsv1.StatefulSet) },
	"v1 Service":                                    func() any { return new(corev1.Service) },
	"v1 ServiceAccount":                             func() any { return new(corev1.ServiceAccount) },
	"v1 ConfigMap":                                  func() any { return new(corev1.ConfigMap) },
	"policy/v1 PodDisruptionBudget":                 func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1 NetworkPolicy":            func() any { return new(networkingv1.NetworkPolicy) },
	"kustomize.config.k8s.io/v1beta1 Kustomization": func() any { return new(kustomization) },
	"kustomize.config.k8s.io/v1alpha1 Component":    func() any { return new(kustomization) },
	"monitoring.coreos.com/v1 PodMonitor":           func() any { return new(podMonitor) },
	"cert-manager.io/v1 Issuer":                     func() any { return new(certIssuer) },
	"cert-manager.io/v1 Certificate":                func() any { return new(certificate) },
}

// kustomization is the subset of kustomize's Kustomization (and Component)
// these manifests use; a field outside it fails the strict decoding.
type kustomization struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Namespace  string           `json:"namespace,omitempty"`
	Resources  []string         `json:"resources,omitempty"`
	Components []string         `json:"components,omitempty"`
	Labels     []kustomizeLabel `json:"labels,omitempty"`
	Images     []kustomizeImage `json:"images,omitempty"`
	Patches    []kustomizePatch `json:"patches,omitempty"`
}

type kustomizeLabel struct {
	Pairs            map[string]string `json:"pairs"`
	IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	IncludeTemplates bool              `json:"includeTemplates,omitempty"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
}

type kustomizePatch struct {
	Path   string           `json:"path"`
	Target *kustomizeTarget `json:"target,omitempty"`
}

type kustomizeTarget struct {
	Group   string `json:"group,omitempty"`
	Version string `json:"version,omitempty"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
}

// loadAll reads and strictly decodes every YAML document under deploy/k8s.
func loadAll(t *testing.T) []object {
	t.Helper()
	var objs []object
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAML(path) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		file := filepath.ToSlash(path)
		docs := splitDocuments(data)
		require.NotEmptyf(t, docs, "%s has no YAML document", file)
		for i, doc := range docs {
			v := decode(t, file, i, doc)
			objs = append(objs, object{file: file, value: v})
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, objs)
	return objs
}

func isYAML(path string) bool {
	ext := filepath.Ext(path)
	return ext == ".yaml" || ext == ".yml"
}

// splitDocuments splits a multi-document YAML file into its documents.
func splitDocuments(data []byte) [][]byte { return manifest.SplitDocuments(data) }

// decode picks the type of one document and decodes it strictly: a top-level
// list is a JSON patch, a map with scrape_configs a Prometheus
// configuration, anything else a Kubernetes-style object by apiVersion and
// kind.
func decode(t *testing.T, file string, i int, doc []byte) any {
	t.Helper()
	var generic any
	require.NoErrorf(t, yaml.Unmarshal(doc, &generic), "%s document %d", file, i)
	var v any
	switch g := generic.(type) {
	case []any:
		v = new(jsonPatch)
	case map[string]any:
		if _, ok := g["scrape_configs"]; ok {
			v = new(promConfig)
			break
		}
		apiVersion, _ := g["apiVersion"].(string)
		kind, _ := g["kind"].(string)
		newValue, ok := decoders[apiVersion+" "+kind]
		require.Truef(t, ok, "%s document %d: no decoder for apiVersion %q kind %q; add one to decoders", file, i, apiVersion, kind)
		v = newValue()
	default:
		require.Failf(t, "unknown document", "%s document %d is neither a map nor a list", file, i)
	}
	require.NoErrorf(t, decodeStrict(doc, v), "%s document %d", file, i)
	return v
}

// decodeStrict decodes YAML into v as the API server would.
func decodeStrict(doc []byte, v any) error { return manifest.DecodeStrict(doc, v) }

// inDir returns the objects of type T read from files directly in dir
// (baseDir for the base).
func inDir[T any](objs []object, dir string) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.value.(*T); ok && filepath.ToSlash(filepath.Dir(o.file)) == dir {
			out = append(out, v)
		}
	}
	return out
}

// one returns the only object of type T in dir.
func one[T any](t *testing.T, objs []object, dir string) *T {
	t.Helper()
	vs := inDir[T](objs, dir)
	require.Lenf(t, vs, 1, "want exactly one %T in %s", *new(T), dir)
	return vs[0]
}

func TestEveryDocumentDecodesStrictly(t *testing.T) {
	objs := loadAll(t)
	files := map[string]bool{}
	for _, o := range objs {
		files[o.file] = true
	}
	// Each directory's content is checked by the other tests; this pins
	// that they were all found.
	for _, want := range []string{
		"base/kustomization.yaml",
		"base/statefulset.yaml",
		"overlays/persistent/kustomization.yaml",
		"overlays/persistent/statefulset-persistence.yaml",
		"base/networkpolicy.yaml",
		"optional/tls-cert-manager/kustomization.yaml",
		"optional/tls-cert-manager/certificates.yaml",
		"optional/tls-cert-manager/tls-config.yaml",
		"optional/tls-cert-manager/statefulset-tls.yaml",
		"prometheus/scrape-kubernetes-sd.yml",
		"prometheus/scrape-http-sd.yml",
		"prometheus/podmonitor.yaml",
	} {
		require.Truef(t, files[want], "%s was not read", want)
	}
}

func TestStrictDecodingRejectsMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: v1\nkind: Service\nspec:\n  clusterIp: None\n",
		"wrong case":      "apiVersion: v1\nkind: Service\nspec:\n  ClusterIP: None\n",
		"duplicate field": "apiVersion: v1\nkind: Service\nspec:\n  clusterIP: None\n  clusterIP: None\n",
	} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, decodeStrict([]byte(doc), new(corev1.Service)))
		})
	}
	require.NoError(t, decodeStrict([]byte("apiVersion: v1\nkind: Service\nspec:\n  clusterIP: None\n"), new(corev1.Service)))
}

func TestSplitDocuments(t *testing.T) {
	docs := splitDocuments([]byte("# header\n---\na: 1\n---  \n# only a comment\n---\nb: |\n  x\n  ---not a separator\n"))
	require.Len(t, docs, 2)
	require.Contains(t, string(docs[0]), "a: 1")
	require.Contains(t, string(docs[1]), "---not a separator")
}
