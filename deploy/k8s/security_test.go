package k8s_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const tlsDir = "optional/tls-cert-manager"

// certIssuer is the part of cert-manager's Issuer the component uses; a
// field outside it fails the strict decoding.
type certIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

// certificate is the part of cert-manager's Certificate the component
// uses.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		IsCA        bool     `json:"isCA,omitempty"`
		CommonName  string   `json:"commonName,omitempty"`
		SecretName  string   `json:"secretName"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		Usages      []string `json:"usages,omitempty"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey"`
		IssuerRef struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// mountOf returns the volume mounted at the directory of path, and the
// file name below it.
func mountOf(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, path string) (*corev1.Volume, string) {
	t.Helper()
	require.True(t, filepath.IsAbs(path), path)
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == filepath.Dir(path) {
			mount = &c.VolumeMounts[i]
		}
	}
	require.NotNilf(t, mount, "nothing is mounted at the directory of %s", path)
	require.True(t, mount.ReadOnly, "%s is mounted read-only", path)
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == mount.Name {
			return &spec.Volumes[i], filepath.Base(path)
		}
	}
	t.Fatalf("no volume %s", mount.Name)
	return nil, ""
}

// TestBaseMountsTheGossipKey: the base's peers encrypt gossip with the key
// of a Secret it mounts where --cluster.gossip-key-file points.
func TestBaseMountsTheGossipKey(t *testing.T) {
	b := loadBase(t)
	spec := &b.sts.Spec.Template.Spec
	c := container(t, spec)
	path, ok := flagValue(c.Args, "cluster.gossip-key-file")
	require.True(t, ok, "the base sets --cluster.gossip-key-file")
	v, file := mountOf(t, spec, c, path)
	require.NotNil(t, v.Secret, "the key comes from a Secret")
	require.Equal(t, "pushring-gossip-key", v.Secret.SecretName)
	require.Equal(t, "gossip.key", file)
	require.Nil(t, v.Secret.Optional, "a pod without the key must not start")
	require.Contains(t, b.kust.Resources, "networkpolicy.yaml")
	for _, o := range loadAll(t) {
		_, isSecret := o.value.(*corev1.Secret)
		require.False(t, isSecret, "%s: no key is committed; each cluster makes its own", o.file)
	}
}

// tlsStatefulSet builds the base with the TLS component and returns its
// StatefulSet and ConfigMaps.
func tlsStatefulSet(t *testing.T) (*appsv1.StatefulSet, map[string]*corev1.ConfigMap, map[string]*certificate) {
	t.Helper()
	var sts *appsv1.StatefulSet
	cms, certs := map[string]*corev1.ConfigMap{}, map[string]*certificate{}
	for _, o := range built(t, tlsDir, true) {
		switch v := o.value.(type) {
		case *appsv1.StatefulSet:
			sts = v
		case *corev1.ConfigMap:
			cms[v.Name] = v
		case *certificate:
			certs[v.Name] = v
		}
	}
	require.NotNil(t, sts)
	return sts, cms, certs
}

// TestTLSComponentWiresTheCertificate: with the cert-manager component,
// --cluster.tls-config names a file of a mounted ConfigMap, whose
// certificate, key and CA files are the keys cert-manager writes into the
// Secret the component mounts, and whose server name the certificate holds.
func TestTLSComponentWiresTheCertificate(t *testing.T) {
	sts, cms, certs := tlsStatefulSet(t)
	spec := &sts.Spec.Template.Spec
	c := container(t, spec)
	cfgPath, ok := flagValue(c.Args, "cluster.tls-config")
	require.True(t, ok, "the component sets --cluster.tls-config")
	v, file := mountOf(t, spec, c, cfgPath)
	require.NotNil(t, v.ConfigMap)
	cm := cms[v.ConfigMap.Name]
	require.NotNil(t, cm, "ConfigMap %s", v.ConfigMap.Name)

	var tlsFile struct {
		Server map[string]string `json:"tls_server_config"`
		Client map[string]string `json:"tls_client_config"`
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(cm.Data[file]), &tlsFile))
	require.Equal(t, "RequireAndVerifyClientCert", tlsFile.Server["client_auth_type"])
	peer := certs["pushring-peer"]
	require.NotNil(t, peer)
	for _, f := range []string{tlsFile.Server["cert_file"], tlsFile.Server["key_file"], tlsFile.Server["client_ca_file"],
		tlsFile.Client["cert_file"], tlsFile.Client["key_file"], tlsFile.Client["ca_file"]} {
		require.NotEmpty(t, f)
		sv, key := mountOf(t, spec, c, f)
		require.NotNil(t, sv.Secret, "%s comes from a Secret", f)
		require.Equal(t, peer.Spec.SecretName, sv.Secret.SecretName, "%s is the peer certificate's Secret", f)
		require.Contains(t, []string{"tls.crt", "tls.key", "ca.crt"}, key, "a key cert-manager writes")
	}
	require.Contains(t, peer.Spec.DNSNames, tlsFile.Client["server_name"], "peers check the name the certificate holds")
	for _, u := range []string{"server auth", "client auth"} {
		require.True(t, slices.Contains(peer.Spec.Usages, u), "the peer certificate serves both sides: %s", u)
	}
	require.True(t, strings.HasPrefix(peer.Spec.IssuerRef.Name, "pushring"))
}
