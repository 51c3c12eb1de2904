package helm_test

import (
	"encoding/base64"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// mounted returns the volume mounted (read-only) at the directory of
// path, and the file name below it.
func mounted(t *testing.T, r rendered, path string) (*corev1.Volume, string) {
	t.Helper()
	c := r.container(t)
	for _, m := range c.VolumeMounts {
		if m.MountPath != filepath.Dir(path) {
			continue
		}
		require.True(t, m.ReadOnly, "%s is mounted read-only", path)
		for i, v := range r.sts.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				return &r.sts.Spec.Template.Spec.Volumes[i], filepath.Base(path)
			}
		}
	}
	t.Fatalf("nothing is mounted at the directory of %s", path)
	return nil, ""
}

// checkSecurity: the gossip key and the TLS files are mounted where the
// flags point, the NetworkPolicy fences the peer ports, and the probes
// carry the headers they were given.
func checkSecurity(t *testing.T, r rendered) {
	t.Helper()
	if path, ok := r.arg(t, "cluster.gossip-key-file"); ok {
		v, file := mounted(t, r, path)
		require.NotNil(t, v.Secret)
		require.Equal(t, "gossip.key", file)
		if r.secret != nil {
			require.Equal(t, r.secret.Name, v.Secret.SecretName, "the chart's Secret is mounted")
			key, err := base64.StdEncoding.DecodeString(string(r.secret.Data["gossip.key"]))
			require.NoError(t, err, "the key is base64, as --cluster.gossip-key-file wants")
			require.Len(t, key, 32)
		}
	} else {
		require.Nil(t, r.secret, "no Secret without the gossip key")
	}
	if path, ok := r.arg(t, "cluster.tls-config"); ok {
		v, file := mounted(t, r, path)
		require.NotNil(t, v.ConfigMap)
		require.NotNil(t, r.tlsCfg)
		require.Equal(t, r.tlsCfg.Name, v.ConfigMap.Name)
		var f struct {
			Server map[string]string `json:"tls_server_config"`
			Client map[string]string `json:"tls_client_config"`
		}
		require.NoError(t, yaml.UnmarshalStrict([]byte(r.tlsCfg.Data[file]), &f))
		for _, p := range []string{f.Server["cert_file"], f.Server["key_file"], f.Server["client_ca_file"], f.Client["cert_file"], f.Client["key_file"], f.Client["ca_file"]} {
			sv, _ := mounted(t, r, p)
			require.NotNil(t, sv.Secret, "%s comes from the certificate's Secret", p)
		}
	} else {
		require.Nil(t, r.tlsCfg)
	}
	if r.netpol != nil {
		sel, err := metav1.LabelSelectorAsSelector(&r.netpol.Spec.PodSelector)
		require.NoError(t, err)
		require.True(t, sel.Matches(labels.Set(r.sts.Spec.Template.Labels)))
		require.Len(t, r.netpol.Spec.Ingress, 2)
		require.Empty(t, r.netpol.Spec.Ingress[0].From, "HTTP from anywhere")
		require.Len(t, r.netpol.Spec.Ingress[0].Ports, 1)
		require.Equal(t, "http", r.netpol.Spec.Ingress[0].Ports[0].Port.String())
		require.Len(t, r.netpol.Spec.Ingress[1].From, 1, "the peer ports from the peers only")
	}
}

func TestChartSecurity(t *testing.T) {
	def := render(t, nil)
	require.NotNil(t, def.secret, "a gossip key by default")
	require.NotNil(t, def.netpol, "a NetworkPolicy by default")
	require.Equal(t, "keep", def.secret.Annotations["helm.sh/resource-policy"], "an uninstall does not lose the key")
	_, ok := def.arg(t, "cluster.tls-config")
	require.False(t, ok, "TLS needs a certificate: off by default")

	closed := render(t, cases(t)["closed peer plane"])
	require.Nil(t, closed.secret, "an existing Secret is used, not made")
	v, _ := mounted(t, closed, must(closed.arg(t, "cluster.gossip-key-file")))
	require.Equal(t, "my-gossip-key", v.Secret.SecretName)
	require.Contains(t, closed.tlsCfg.Data["tls.yml"], "server_name: pushring-peers")
	c := closed.container(t)
	for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		require.Equal(t, []corev1.HTTPHeader{{Name: "Authorization", Value: "Basic cHJvYmU6c2VjcmV0"}}, p.HTTPGet.HTTPHeaders)
	}

	open := render(t, cases(t)["open peer plane"])
	require.Nil(t, open.secret)
	require.Nil(t, open.netpol)
	_, ok = open.arg(t, "cluster.gossip-key-file")
	require.False(t, ok)
}
