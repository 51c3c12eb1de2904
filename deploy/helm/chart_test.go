package helm_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/pushring/pushring/deploy/internal/manifest"
	"github.com/pushring/pushring/ingest"
)

const (
	chartDir    = "pushring"
	releaseName = "metrics"
	namespace   = "monitoring"
)

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the chart renders; a field outside it fails the strict decoding.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port              string           `json:"port"`
			Path              string           `json:"path"`
			HonorLabels       bool             `json:"honorLabels"`
			Interval          string           `json:"interval,omitempty"`
			ScrapeTimeout     string           `json:"scrapeTimeout,omitempty"`
			Scheme            string           `json:"scheme,omitempty"`
			TLSConfig         map[string]any   `json:"tlsConfig,omitempty"`
			MetricRelabelings []map[string]any `json:"metricRelabelings,omitempty"`
			Relabelings       []map[string]any `json:"relabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is a release's objects, by kind.
type rendered struct {
	sts      *appsv1.StatefulSet
	services []*corev1.Service
	sa       *corev1.ServiceAccount
	rules    *corev1.ConfigMap
	tlsCfg   *corev1.ConfigMap
	secret   *corev1.Secret
	netpol   *networkingv1.NetworkPolicy
	pdb      *policyv1.PodDisruptionBudget
	monitor  *serviceMonitor
}

// render installs the chart in Helm's client-only dry-run mode (what
// `helm template` does) and decodes every rendered document strictly.
func render(t *testing.T, values map[string]any) rendered {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.DiscardHandler)
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.Replace = true
	rel, err := install.RunWithContext(t.Context(), ch, values)
	require.NoError(t, err)
	r, ok := rel.(*release.Release)
	require.Truef(t, ok, "a release of type %T", rel)

	var out rendered
	docs := manifest.SplitDocuments([]byte(r.Manifest))
	require.NotEmpty(t, docs)
	for i, doc := range docs {
		decodeInto(t, &out, i, doc)
	}
	require.NotNil(t, out.sts, "no StatefulSet")
	return out
}

func decodeInto(t *testing.T, out *rendered, i int, doc []byte) {
	t.Helper()
	var meta metav1.TypeMeta
	require.NoError(t, yaml.Unmarshal(doc, &meta))
	var v any
	switch meta.APIVersion + " " + meta.Kind {
	case "apps/v1 StatefulSet":
		require.Nil(t, out.sts, "two StatefulSets")
		out.sts = new(appsv1.StatefulSet)
		v = out.sts
	case "v1 Service":
		s := new(corev1.Service)
		out.services = append(out.services, s)
		v = s
	case "v1 ServiceAccount":
		out.sa = new(corev1.ServiceAccount)
		v = out.sa
	case "v1 ConfigMap":
		cm := new(corev1.ConfigMap)
		if strings.Contains(string(doc), "tls.yml:") {
			out.tlsCfg = cm
		} else {
			out.rules = cm
		}
		v = cm
	case "v1 Secret":
		require.Nil(t, out.secret, "two Secrets")
		out.secret = new(corev1.Secret)
		v = out.secret
	case "networking.k8s.io/v1 NetworkPolicy":
		out.netpol = new(networkingv1.NetworkPolicy)
		v = out.netpol
	case "policy/v1 PodDisruptionBudget":
		out.pdb = new(policyv1.PodDisruptionBudget)
		v = out.pdb
	case "monitoring.coreos.com/v1 ServiceMonitor":
		out.monitor = new(serviceMonitor)
		v = out.monitor
	default:
		require.Failf(t, "unexpected kind", "document %d: %s %s", i, meta.APIVersion, meta.Kind)
	}
	require.NoErrorf(t, manifest.DecodeStrict(doc, v), "document %d:\n%s", i, doc)
}

func (r rendered) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := r.sts.Spec.Template.Spec.Containers
	require.Len(t, cs, 1)
	return &cs[0]
}

// arg returns the value of --name in the container's arguments.
func (r rendered) arg(t *testing.T, name string) (string, bool) {
	t.Helper()
	for _, a := range r.container(t).Args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// pushgatewayChartValues is a values file as a user of the
// prometheus-community prometheus-pushgateway chart writes it.
const pushgatewayChartValues = `
image:
  repository: registry.example.com/pushring
  tag: "0.1.0"
  pullPolicy: Always
service:
  type: NodePort
  port: 9091
  nodePort: 32100
resources:
  limits: {cpu: 200m, memory: 256Mi}
  requests: {cpu: 100m, memory: 128Mi}
securityContext:
  fsGroup: 65534
  runAsUser: 65534
  runAsNonRoot: true
containerSecurityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
persistentVolume:
  enabled: true
  size: 5Gi
  storageClass: fast
  mountPath: /data
serviceMonitor:
  enabled: true
  namespace: prometheus
  interval: 10s
  additionalLabels: {release: kube-prometheus-stack}
  metricRelabelings:
    - action: keep
      regex: 'push_.*'
      sourceLabels: [__name__]
extraArgs:
  - --persistence.interval=1m
extraVars:
  - name: GOMAXPROCS
    value: "2"
nodeSelector: {kubernetes.io/os: linux}
tolerations:
  - {key: dedicated, operator: Equal, value: monitoring, effect: NoSchedule}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: kubernetes.io/arch, operator: In, values: [amd64]}
podDisruptionBudget:
  minAvailable: 2
`

func valuesOf(t *testing.T, doc string) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(doc), &v))
	return v
}

// cases is the matrix every test renders.
func cases(t *testing.T) map[string]map[string]any {
	return map[string]map[string]any{
		"defaults":                 {},
		"pushgateway chart values": valuesOf(t, pushgatewayChartValues),
		"cluster": valuesOf(t, `
replicaCount: 5
replicationFactor: 2
ttl: 1h
ttlRules:
  - job: "edge-.*"
    ttl: 10m
  - job: "batch-.*"
    labels: {env: "dev|test"}
    ttl: 24h
`),
		"single peer":             {"replicaCount": 1},
		"no dynamic provisioning": valuesOf(t, "persistentVolume: {enabled: true, storageClass: \"-\"}"),
		"existing service account": valuesOf(t, `
serviceAccount: {create: false, name: monitoring-sa}
fullnameOverride: pushgateway
`),
		"closed peer plane": valuesOf(t, `
security:
  gossipKey: {existingSecret: my-gossip-key}
  tls: {enabled: true, secretName: pushring-peer-tls, serverName: pushring-peers}
probes:
  httpHeaders:
    - {name: Authorization, value: Basic cHJvYmU6c2VjcmV0}
`),
		"open peer plane": valuesOf(t, `
security:
  gossipKey: {enabled: false}
  networkPolicy: {enabled: false}
`),
	}
}

func TestChartRendersEveryCase(t *testing.T) {
	for name, values := range cases(t) {
		t.Run(name, func(t *testing.T) {
			r := render(t, values)
			checkSelectors(t, r)
			checkVolumes(t, r)
			checkSeed(t, r)
			checkFlagsExist(t, r)
			checkRules(t, r)
			checkSecurity(t, r)
		})
	}
}

// checkSelectors: the StatefulSet, both Services, the PDB and the
// ServiceMonitor select pushring's pods, and the ServiceMonitor selects
// the ClusterIP Service only (selecting the headless one too would scrape
// every peer twice).
func checkSelectors(t *testing.T, r rendered) {
	t.Helper()
	pod := labels.Set(r.sts.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(r.sts.Spec.Selector)
	require.NoError(t, err)
	require.True(t, sel.Matches(pod), "the StatefulSet selects its pods")
	require.Len(t, r.services, 2)
	for _, s := range r.services {
		require.Truef(t, labels.SelectorFromSet(s.Spec.Selector).Matches(pod), "Service %s selects the pods", s.Name)
	}
	if r.pdb != nil {
		sel, err := metav1.LabelSelectorAsSelector(r.pdb.Spec.Selector)
		require.NoError(t, err)
		require.True(t, sel.Matches(pod))
	}
	if r.monitor != nil {
		sel, err := metav1.LabelSelectorAsSelector(&r.monitor.Spec.Selector)
		require.NoError(t, err)
		var picked []*corev1.Service
		for _, s := range r.services {
			if sel.Matches(labels.Set(s.Labels)) {
				picked = append(picked, s)
			}
		}
		require.Len(t, picked, 1, "the ServiceMonitor selects one Service")
		require.NotEqual(t, corev1.ClusterIPNone, picked[0].Spec.ClusterIP)
		require.Equal(t, []string{namespace}, r.monitor.Spec.NamespaceSelector.MatchNames)
		for _, e := range r.monitor.Spec.Endpoints {
			require.True(t, slices.ContainsFunc(picked[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }))
			require.True(t, e.HonorLabels, "pushed job and instance labels are kept")
		}
	}
}

// checkVolumes: every mount has a volume or a claim template, and
// --persistence.file lies on the claim's mount.
func checkVolumes(t *testing.T, r rendered) {
	t.Helper()
	spec := r.sts.Spec.Template.Spec
	names := map[string]bool{}
	for _, v := range spec.Volumes {
		names[v.Name] = true
	}
	for _, c := range r.sts.Spec.VolumeClaimTemplates {
		names[c.Name] = true
	}
	mounts := map[string]string{}
	for _, m := range r.container(t).VolumeMounts {
		require.Truef(t, names[m.Name], "mount %s has no volume", m.Name)
		mounts[m.Name] = m.MountPath
	}
	file, persistent := r.arg(t, "persistence.file")
	require.Equal(t, persistent, len(r.sts.Spec.VolumeClaimTemplates) == 1, "a claim template exactly when persisting")
	if persistent {
		require.Equal(t, mounts[r.sts.Spec.VolumeClaimTemplates[0].Name], filepath.Dir(file))
	}
}

// checkSeed: peers find each other through the headless Service, which
// must list peers before they are ready, and the pod's Service account
// exists or is named by the user.
func checkSeed(t *testing.T, r rendered) {
	t.Helper()
	seed, ok := r.arg(t, "cluster.peer")
	require.True(t, ok)
	var headless *corev1.Service
	for _, s := range r.services {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless = s
		}
	}
	require.NotNil(t, headless)
	require.Equal(t, headless.Name+":7946", seed)
	require.True(t, headless.Spec.PublishNotReadyAddresses)
	require.Equal(t, headless.Name, r.sts.Spec.ServiceName)
	if r.sa != nil {
		require.Equal(t, r.sa.Name, r.sts.Spec.Template.Spec.ServiceAccountName)
	}
}

var binaryFlags struct {
	sync.Once
	flags map[string]bool
	err   error
}

// checkFlagsExist: every flag the chart passes is one the binary knows.
func checkFlagsExist(t *testing.T, r rendered) {
	t.Helper()
	binaryFlags.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			binaryFlags.err = err
			return
		}
		root, err := manifest.ModuleRoot(wd)
		if err != nil {
			binaryFlags.err = err
			return
		}
		dir, err := os.MkdirTemp("", "pushring-helm-test-*")
		if err != nil {
			binaryFlags.err = err
			return
		}
		defer os.RemoveAll(dir)
		binaryFlags.flags, binaryFlags.err = manifest.HelpFlags(t.Context(), root, dir)
	})
	require.NoError(t, binaryFlags.err)
	for _, a := range r.container(t).Args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		require.Truef(t, binaryFlags.flags[name], "%s: pushring --help does not list --%s", a, name)
	}
}

// nopStore satisfies ingest.Store for loading rules; nothing is pushed.
type nopStore struct{ ingest.Store }

// checkRules: the TTL rules ConfigMap, when there is one, is mounted where
// --push.ttl-rules-file points and loads with pushring's own parser.
func checkRules(t *testing.T, r rendered) {
	t.Helper()
	file, ok := r.arg(t, "push.ttl-rules-file")
	require.Equal(t, ok, r.rules != nil, "the rules flag exactly when there are rules")
	if !ok {
		return
	}
	content, found := r.rules.Data[filepath.Base(file)]
	require.True(t, found, "the ConfigMap holds %s", filepath.Base(file))
	path := filepath.Join(t.TempDir(), "ttl-rules.yml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	_, err := ingest.New(ingest.Config{TTLRulesFile: path}, nopStore{}, nil, nil, nil)
	require.NoError(t, err, "pushring refuses the rendered rules:\n%s", content)
}

func TestChartValuesLand(t *testing.T) {
	r := render(t, valuesOf(t, pushgatewayChartValues))
	c := r.container(t)
	require.Equal(t, "registry.example.com/pushring:0.1.0", c.Image)
	require.Equal(t, corev1.PullAlways, c.ImagePullPolicy)
	require.Equal(t, "256Mi", c.Resources.Limits.Memory().String())
	require.Equal(t, int64(65534), *r.sts.Spec.Template.Spec.SecurityContext.FSGroup, "securityContext is the pod's, as in the Pushgateway chart")
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.Equal(t, "/data/pushring.db", must(r.arg(t, "persistence.file")))
	require.Equal(t, "1m", must(r.arg(t, "persistence.interval")), "extraArgs")
	require.Equal(t, "5Gi", r.sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String())
	require.Equal(t, "fast", *r.sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)
	require.Equal(t, "prometheus", r.monitor.Namespace)
	require.Equal(t, "kube-prometheus-stack", r.monitor.Labels["release"])
	require.Equal(t, "10s", r.monitor.Spec.Endpoints[0].Interval)
	require.Len(t, r.monitor.Spec.Endpoints[0].MetricRelabelings, 1)
	require.Equal(t, "linux", r.sts.Spec.Template.Spec.NodeSelector["kubernetes.io/os"])
	require.Len(t, r.sts.Spec.Template.Spec.Tolerations, 1)
	require.NotNil(t, r.sts.Spec.Template.Spec.Affinity.NodeAffinity)
	require.Nil(t, r.sts.Spec.Template.Spec.Affinity.PodAntiAffinity, "a user's affinity replaces the default")
	require.Contains(t, c.Env, corev1.EnvVar{Name: "GOMAXPROCS", Value: "2"})
	require.Equal(t, 2, r.pdb.Spec.MinAvailable.IntValue())
	for _, s := range r.services {
		if s.Spec.ClusterIP != corev1.ClusterIPNone {
			require.Equal(t, corev1.ServiceTypeNodePort, s.Spec.Type)
			require.Equal(t, int32(32100), s.Spec.Ports[0].NodePort)
		}
	}
}

func TestChartDefaults(t *testing.T) {
	r := render(t, nil)
	require.Equal(t, int32(3), *r.sts.Spec.Replicas)
	require.Equal(t, "pushring:0.1.0", r.container(t).Image, "the tag defaults to the chart's appVersion")
	require.Equal(t, releaseName+"-pushring", r.sts.Name)
	_, ok := r.arg(t, "cluster.replication-factor")
	require.False(t, ok, "no --cluster.replication-factor unless replicationFactor is set")
	_, ok = r.arg(t, "push.ttl")
	require.False(t, ok, "groups live until deleted, as on the Pushgateway")
	require.Nil(t, r.monitor)
	require.Nil(t, r.rules)
	require.Equal(t, 1, r.pdb.Spec.MaxUnavailable.IntValue())
	require.NotNil(t, r.sts.Spec.Template.Spec.Affinity.PodAntiAffinity, "one peer per node, preferably")
	require.False(t, *r.sa.AutomountServiceAccountToken)
}

func TestChartClusterValues(t *testing.T) {
	r := render(t, cases(t)["cluster"])
	require.Equal(t, int32(5), *r.sts.Spec.Replicas)
	require.Equal(t, "2", must(r.arg(t, "cluster.replication-factor")))
	require.Equal(t, "1h", must(r.arg(t, "push.ttl")))
	require.Equal(t, "/etc/pushring/ttl-rules.yml", must(r.arg(t, "push.ttl-rules-file")))

	single := render(t, cases(t)["single peer"])
	require.Nil(t, single.pdb, "no PodDisruptionBudget for one peer: it would block every node drain")

	noClass := render(t, cases(t)["no dynamic provisioning"])
	require.Empty(t, *noClass.sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)

	existing := render(t, cases(t)["existing service account"])
	require.Nil(t, existing.sa)
	require.Equal(t, "monitoring-sa", existing.sts.Spec.Template.Spec.ServiceAccountName)
	require.Equal(t, "pushgateway", existing.sts.Name)
}

// TestChartLints runs Helm's linter, strict (warnings fail), on every case.
func TestChartLints(t *testing.T) {
	for name, values := range cases(t) {
		t.Run(name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = namespace
			res := lint.Run([]string{chartDir}, values)
			require.Equal(t, 1, res.TotalChartsLinted)
			require.Empty(t, res.Errors)
			for _, m := range res.Messages {
				require.Lessf(t, m.Severity, support.WarningSev, "%s", m.Error())
				t.Log(m.Error())
			}
		})
	}
}

func must(v string, ok bool) string {
	if !ok {
		return "<unset>"
	}
	return v
}
