package k8s_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
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
// document is a list; decoding one strictly checks its shape, kustomize
// applies it.
type jsonPatch []patchOp

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

// persistentStatefulSet returns the StatefulSet kustomize builds from the
// persistent overlay, after checking the overlay's kustomization.
func persistentStatefulSet(t *testing.T, b base) *appsv1.StatefulSet {
	t.Helper()
	k := one[kustomization](t, loadAll(t), persistentDir)
	require.Equal(t, []string{"../../" + baseDir}, k.Resources, "the overlay builds on the base")
	require.Len(t, k.Patches, 1)
	p := k.Patches[0]
	require.NotNil(t, p.Target)
	require.Equal(t, "StatefulSet", p.Target.Kind)
	require.Equal(t, b.sts.Name, p.Target.Name, "the patch targets the base StatefulSet by name")

	var sets []*appsv1.StatefulSet
	for _, o := range built(t, persistentDir, false) {
		if sts, ok := o.value.(*appsv1.StatefulSet); ok {
			sets = append(sets, sts)
		}
	}
	require.Len(t, sets, 1)
	return sets[0]
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
	np := one[networkingv1.NetworkPolicy](t, loadAll(t), baseDir)
	require.Contains(t, b.kust.Resources, "networkpolicy.yaml", "the NetworkPolicy is part of the base")

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
