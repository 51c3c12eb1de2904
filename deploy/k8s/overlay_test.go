package k8s_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const persistentDir = "overlays/persistent"

// jsonPatch is an RFC 6902 patch, as kustomize applies a patch file whose
// document is a list.
type jsonPatch []patchOp

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

// apply applies the patch to a JSON document decoded into any. It knows the
// operations the overlays use: add, replace, remove and test.
func (p jsonPatch) apply(doc any) (any, error) {
	for i, op := range p {
		var value any
		if len(op.Value) > 0 {
			if err := json.Unmarshal(op.Value, &value); err != nil {
				return nil, fmt.Errorf("op %d: %w", i, err)
			}
		}
		if !strings.HasPrefix(op.Path, "/") {
			return nil, fmt.Errorf("op %d: path %q does not start with /", i, op.Path)
		}
		tokens := strings.Split(op.Path[1:], "/")
		for j, tok := range tokens {
			tokens[j] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		}
		var err error
		if doc, err = patchAt(doc, tokens, op.Op, value); err != nil {
			return nil, fmt.Errorf("op %d (%s %s): %w", i, op.Op, op.Path, err)
		}
	}
	return doc, nil
}

// patchAt walks tokens down from node, applies op at the last one and
// returns node, which is a new slice when an element was added or removed.
func patchAt(node any, tokens []string, op string, value any) (any, error) {
	if len(tokens) > 1 {
		switch n := node.(type) {
		case map[string]any:
			child, ok := n[tokens[0]]
			if !ok {
				return nil, fmt.Errorf("no member %q", tokens[0])
			}
			child, err := patchAt(child, tokens[1:], op, value)
			n[tokens[0]] = child
			return n, err
		case []any:
			i, err := index(tokens[0], len(n)-1)
			if err != nil {
				return nil, err
			}
			child, err := patchAt(n[i], tokens[1:], op, value)
			n[i] = child
			return n, err
		}
		return nil, fmt.Errorf("%q: not an object or array", tokens[0])
	}
	key := tokens[0]
	switch n := node.(type) {
	case map[string]any:
		old, exists := n[key]
		switch {
		case op == "add":
			n[key] = value
		case !exists:
			return nil, fmt.Errorf("no member %q", key)
		case op == "replace":
			n[key] = value
		case op == "remove":
			delete(n, key)
		case op == "test" && !reflect.DeepEqual(old, value):
			return nil, fmt.Errorf("test failed: %v is not %v", old, value)
		}
		return n, nil
	case []any:
		if op == "add" {
			if key == "-" {
				return append(n, value), nil
			}
			i, err := index(key, len(n))
			if err != nil {
				return nil, err
			}
			return append(n[:i], append([]any{value}, n[i:]...)...), nil
		}
		i, err := index(key, len(n)-1)
		if err != nil {
			return nil, err
		}
		switch op {
		case "replace":
			n[i] = value
		case "remove":
			return append(n[:i], n[i+1:]...), nil
		case "test":
			if !reflect.DeepEqual(n[i], value) {
				return nil, fmt.Errorf("test failed: %v is not %v", n[i], value)
			}
		}
		return n, nil
	}
	return nil, errors.New("parent is not an object or array")
}

func index(tok string, last int) (int, error) {
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 || i > last {
		return 0, fmt.Errorf("array index %q out of range [0, %d]", tok, last)
	}
	return i, nil
}

func TestJSONPatchApply(t *testing.T) {
	doc := map[string]any{"a": []any{"x"}, "b": map[string]any{"c~/d": 1.0}}
	p := jsonPatch{
		{Op: "test", Path: "/a/0", Value: json.RawMessage(`"x"`)},
		{Op: "add", Path: "/a/-", Value: json.RawMessage(`"y"`)},
		{Op: "add", Path: "/a/0", Value: json.RawMessage(`"w"`)},
		{Op: "replace", Path: "/b/c~0~1d", Value: json.RawMessage(`2`)},
		{Op: "add", Path: "/e", Value: json.RawMessage(`{"f":true}`)},
	}
	got, err := p.apply(doc)
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"a": []any{"w", "x", "y"},
		"b": map[string]any{"c~/d": 2.0},
		"e": map[string]any{"f": true},
	}, got)

	for _, bad := range []jsonPatch{
		{{Op: "test", Path: "/a/0", Value: json.RawMessage(`"nope"`)}},
		{{Op: "add", Path: "/missing/x", Value: json.RawMessage(`1`)}},
		{{Op: "replace", Path: "/a/9", Value: json.RawMessage(`1`)}},
	} {
		_, err := bad.apply(map[string]any{"a": []any{"x"}})
		require.Error(t, err, "%+v", bad)
	}
}

// persistentStatefulSet returns the base StatefulSet with the persistent
// overlay's patch applied, after checking the overlay's kustomization.
func persistentStatefulSet(t *testing.T, b base) *appsv1.StatefulSet {
	t.Helper()
	objs := loadAll(t)
	k := one[kustomization](t, objs, persistentDir)
	require.Equal(t, []string{"../.."}, k.Resources, "the overlay builds on the base")
	require.Len(t, k.Patches, 1)
	p := k.Patches[0]
	require.NotNil(t, p.Target)
	require.Equal(t, "StatefulSet", p.Target.Kind)
	require.Equal(t, b.sts.Name, p.Target.Name, "the patch targets the base StatefulSet by name")
	if p.Target.Group != "" {
		require.Equal(t, "apps", p.Target.Group)
	}

	var patch *jsonPatch
	for _, o := range objs {
		if v, ok := o.value.(*jsonPatch); ok && o.file == filepath.ToSlash(filepath.Join(persistentDir, p.Path)) {
			patch = v
		}
	}
	require.NotNilf(t, patch, "%s is not a JSON patch", p.Path)

	raw, err := json.Marshal(b.sts)
	require.NoError(t, err)
	var doc any
	require.NoError(t, json.Unmarshal(raw, &doc))
	doc, err = patch.apply(doc)
	require.NoError(t, err)
	raw, err = json.Marshal(doc)
	require.NoError(t, err)
	var sts appsv1.StatefulSet
	require.NoError(t, decodeStrict(raw, &sts), "the patched StatefulSet")
	return &sts
}

func TestPersistentOverlayMountsTheFile(t *testing.T) {
	b := loadBase(t)
	sts := persistentStatefulSet(t, b)
	c := container(t, &sts.Spec.Template.Spec)

	file, ok := flagValue(c.Args, "persistence.file")
	require.True(t, ok, "the overlay sets --persistence.file")
	require.True(t, filepath.IsAbs(file))
	dir := filepath.Dir(file)

	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == dir {
			mount = &c.VolumeMounts[i]
		}
	}
	require.NotNilf(t, mount, "nothing is mounted at %s, the directory of --persistence.file", dir)
	require.False(t, mount.ReadOnly)
	require.Empty(t, mount.SubPath)

	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	pvc := sts.Spec.VolumeClaimTemplates[0]
	require.Equal(t, mount.Name, pvc.Name, "the mount at %s is the volume claim template", dir)
	require.Contains(t, pvc.Spec.AccessModes, corev1.ReadWriteOnce)
	require.False(t, pvc.Spec.Resources.Requests.Storage().IsZero(), "storage request")
	for _, v := range sts.Spec.Template.Spec.Volumes {
		require.NotEqual(t, pvc.Name, v.Name, "a pod volume would shadow the claim template")
	}

	// Everything else is the base's: the overlay only adds.
	require.Equal(t, slices.Concat(container(t, &b.sts.Spec.Template.Spec).Args, c.Args[len(c.Args)-1:]), c.Args)
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem, "the file lives on the volume, not the root file system")
	require.NotNil(t, sts.Spec.PersistentVolumeClaimRetentionPolicy)
}

func TestNetworkPolicyAdmitsEveryPeerPort(t *testing.T) {
	b := loadBase(t)
	objs := loadAll(t)
	dir := "optional/networkpolicy"
	k := one[kustomization](t, objs, dir)
	require.Equal(t, "Component", k.Kind, "a component, so an overlay can opt in")
	np := one[networkingv1.NetworkPolicy](t, objs, dir)
	require.Equal(t, []string{"networkpolicy.yaml"}, k.Resources)

	podLabels := labels.Set(b.sts.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	require.NoError(t, err)
	require.False(t, sel.Empty(), "the policy must select pushring's pods only")
	require.True(t, sel.Matches(podLabels))

	c := container(t, &b.sts.Spec.Template.Spec)
	for _, cp := range c.Ports {
		fromAnywhere, fromPeers := false, false
		for _, rule := range np.Spec.Ingress {
			if !rulePortsInclude(t, c, rule.Ports, cp) {
				continue
			}
			if len(rule.From) == 0 {
				fromAnywhere = true
			}
			for _, peer := range rule.From {
				if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil {
					continue
				}
				s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
				require.NoError(t, err)
				fromPeers = fromPeers || (!s.Empty() && s.Matches(podLabels))
			}
		}
		if cp.Name == "http" {
			require.True(t, fromAnywhere, "pushers and Prometheus may be anywhere: the HTTP port must stay open")
		} else {
			require.Falsef(t, fromAnywhere, "port %s is for peers only", cp.Name)
			require.Truef(t, fromPeers, "peers cannot reach each other's %s port", cp.Name)
		}
	}
}

func rulePortsInclude(t *testing.T, c *corev1.Container, ports []networkingv1.NetworkPolicyPort, cp corev1.ContainerPort) bool {
	t.Helper()
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		require.NotNil(t, p.Port, "a rule without a port opens every port")
		resolved := containerPort(t, c, *p.Port, proto)
		if resolved.ContainerPort == cp.ContainerPort && protocol(resolved.Protocol) == protocol(cp.Protocol) {
			return true
		}
	}
	return false
}
