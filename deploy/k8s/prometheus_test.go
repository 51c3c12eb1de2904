package k8s_test

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const promDir = "prometheus"

// promConfig is the subset of a Prometheus configuration file the examples
// use; a field outside it fails the strict decoding.
type promConfig struct {
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

type scrapeConfig struct {
	JobName             string          `json:"job_name"`
	HonorLabels         bool            `json:"honor_labels"`
	ScrapeInterval      string          `json:"scrape_interval,omitempty"`
	MetricsPath         string          `json:"metrics_path,omitempty"`
	KubernetesSDConfigs []kubernetesSD  `json:"kubernetes_sd_configs,omitempty"`
	HTTPSDConfigs       []httpSD        `json:"http_sd_configs,omitempty"`
	RelabelConfigs      []relabelConfig `json:"relabel_configs,omitempty"`
}

type kubernetesSD struct {
	Role       string `json:"role"`
	Namespaces *struct {
		Names []string `json:"names"`
	} `json:"namespaces,omitempty"`
}

type httpSD struct {
	URL             string `json:"url"`
	RefreshInterval string `json:"refresh_interval,omitempty"`
}

type relabelConfig struct {
	SourceLabels []string `json:"source_labels,omitempty"`
	Separator    *string  `json:"separator,omitempty"`
	Regex        *string  `json:"regex,omitempty"`
	TargetLabel  string   `json:"target_label,omitempty"`
	Replacement  *string  `json:"replacement,omitempty"`
	Action       string   `json:"action,omitempty"`
}

// podMonitor is the subset of the Prometheus Operator's PodMonitor the
// example uses (the operator's Go types do not resolve with this module's
// dependencies).
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []struct {
			Port        string `json:"port"`
			Path        string `json:"path,omitempty"`
			Interval    string `json:"interval,omitempty"`
			HonorLabels bool   `json:"honorLabels"`
			Relabelings []struct {
				SourceLabels []string `json:"sourceLabels,omitempty"`
				Separator    *string  `json:"separator,omitempty"`
				Regex        *string  `json:"regex,omitempty"`
				TargetLabel  string   `json:"targetLabel,omitempty"`
				Replacement  *string  `json:"replacement,omitempty"`
				Action       string   `json:"action,omitempty"`
			} `json:"relabelings,omitempty"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// relabel applies relabel configs to a target's labels as Prometheus does,
// for the actions the examples use. It returns nil if the target is
// dropped.
func relabel(t *testing.T, lset map[string]string, cfgs []relabelConfig) map[string]string {
	t.Helper()
	for _, c := range cfgs {
		sep, re, repl := ";", "(.*)", "$1"
		if c.Separator != nil {
			sep = *c.Separator
		}
		if c.Regex != nil {
			re = *c.Regex
		}
		if c.Replacement != nil {
			repl = *c.Replacement
		}
		rx, err := regexp.Compile("^(?:" + re + ")$")
		require.NoErrorf(t, err, "regex %q", re)
		vals := make([]string, len(c.SourceLabels))
		for i, l := range c.SourceLabels {
			vals[i] = lset[l]
		}
		val := strings.Join(vals, sep)
		switch c.Action {
		case "", "replace":
			require.NotEmpty(t, c.TargetLabel, "replace needs a target_label")
			m := rx.FindStringSubmatchIndex(val)
			if m == nil {
				continue
			}
			if res := string(rx.ExpandString(nil, repl, val, m)); res == "" {
				delete(lset, c.TargetLabel)
			} else {
				lset[c.TargetLabel] = res
			}
		case "keep":
			if !rx.MatchString(val) {
				return nil
			}
		case "drop":
			if rx.MatchString(val) {
				return nil
			}
		case "labeldrop":
			for name := range lset {
				if rx.MatchString(name) {
					delete(lset, name)
				}
			}
		default:
			require.FailNowf(t, "unsupported action", "this test's relabeller does not know action %q; extend it", c.Action)
		}
	}
	return lset
}

// targetLabels returns what Prometheus attaches to a kept target: its
// labels without the "__" ones, with instance defaulting to the address.
func targetLabels(lset map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range lset {
		if !strings.HasPrefix(k, "__") {
			out[k] = v
		}
	}
	if _, ok := out["instance"]; !ok {
		out["instance"] = lset["__address__"]
	}
	return out
}

// requireOnlyJobAndInstance fails if a target label other than job and
// instance would reach the series. With honor_labels, a target label is
// attached to every pushed series that lacks it; instance is safe because
// pushring gives every pushed series an instance (possibly ""), job
// because every pushed group has one.
func requireOnlyJobAndInstance(t *testing.T, what string, lset map[string]string) {
	t.Helper()
	for name := range targetLabels(lset) {
		require.Containsf(t, []string{"job", "instance"}, name,
			"%s: target label %q would be attached to pushed series and change when a group moves between peers", what, name)
	}
}

var invalidLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// podTargets returns the targets Kubernetes pod discovery makes of a
// pushring pod (one per container port), before relabelling.
func podTargets(c *corev1.Container, podLabels map[string]string, namespace, pod, ip string) []map[string]string {
	var targets []map[string]string
	for _, p := range c.Ports {
		lset := map[string]string{
			"__address__":                                   net.JoinHostPort(ip, fmt.Sprint(p.ContainerPort)),
			"__meta_kubernetes_namespace":                   namespace,
			"__meta_kubernetes_pod_name":                    pod,
			"__meta_kubernetes_pod_ip":                      ip,
			"__meta_kubernetes_pod_ready":                   "true",
			"__meta_kubernetes_pod_phase":                   "Running",
			"__meta_kubernetes_pod_container_name":          c.Name,
			"__meta_kubernetes_pod_container_port_name":     p.Name,
			"__meta_kubernetes_pod_container_port_number":   fmt.Sprint(p.ContainerPort),
			"__meta_kubernetes_pod_container_port_protocol": string(protocol(p.Protocol)),
		}
		for k, v := range podLabels {
			name := invalidLabelChars.ReplaceAllString(k, "_")
			lset["__meta_kubernetes_pod_label_"+name] = v
			lset["__meta_kubernetes_pod_labelpresent_"+name] = "true"
		}
		targets = append(targets, lset)
	}
	return targets
}

// scrapeConfigIn returns the only scrape config of a Prometheus example file.
func scrapeConfigIn(t *testing.T, objs []object, file string) scrapeConfig {
	t.Helper()
	for _, o := range objs {
		if p, ok := o.value.(*promConfig); ok && o.file == promDir+"/"+file {
			require.Lenf(t, p.ScrapeConfigs, 1, "%s", file)
			sc := p.ScrapeConfigs[0]
			require.NotEmpty(t, sc.JobName)
			require.Truef(t, sc.HonorLabels, "%s: honor_labels must be true, as for the Pushgateway", file)
			return sc
		}
	}
	require.FailNowf(t, "missing example", "no Prometheus configuration in %s/%s", promDir, file)
	return scrapeConfig{}
}

func TestKubernetesSDScrapesEveryPeersHTTPPort(t *testing.T) {
	b := loadBase(t)
	sc := scrapeConfigIn(t, loadAll(t), "scrape-kubernetes-sd.yml")
	require.Len(t, sc.KubernetesSDConfigs, 1)
	sd := sc.KubernetesSDConfigs[0]
	require.Equal(t, "pod", sd.Role)
	require.NotNil(t, sd.Namespaces, "select pushring's namespace")
	require.Len(t, sd.Namespaces.Names, 1)
	ns := sd.Namespaces.Names[0]

	c := container(t, &b.sts.Spec.Template.Spec)
	http := servicePort(t, b.clusterIP, "http")
	podLabels := b.sts.Spec.Template.Labels
	var kept []map[string]string
	for _, lset := range podTargets(c, podLabels, ns, "pushring-0", "10.0.0.1") {
		lset["job"] = sc.JobName
		if out := relabel(t, lset, sc.RelabelConfigs); out != nil {
			kept = append(kept, out)
		}
	}
	require.Len(t, kept, 1, "one target per peer: its HTTP port")
	require.Equal(t, "http", kept[0]["__meta_kubernetes_pod_container_port_name"])
	require.Equal(t, fmt.Sprint(http.Port), kept[0]["__meta_kubernetes_pod_container_port_number"])
	requireOnlyJobAndInstance(t, "kubernetes_sd", kept[0])
	require.Equal(t, "pushring-0", targetLabels(kept[0])["instance"], "a peer's own metrics are named by pod")

	other := map[string]string{}
	for k, v := range podLabels {
		other[k] = v + "-other"
	}
	for _, lset := range podTargets(c, other, ns, "other-0", "10.0.0.2") {
		require.Nil(t, relabel(t, lset, sc.RelabelConfigs), "a pod of another app is scraped")
	}
}

func TestHTTPSDAsksTheClusterForTargets(t *testing.T) {
	b := loadBase(t)
	objs := loadAll(t)
	sc := scrapeConfigIn(t, objs, "scrape-http-sd.yml")
	require.Len(t, sc.HTTPSDConfigs, 1)
	u, err := url.Parse(sc.HTTPSDConfigs[0].URL)
	require.NoError(t, err)
	require.Equal(t, "http", u.Scheme)
	require.Equal(t, "/api/v1/cluster/targets", u.Path)
	host, port, err := net.SplitHostPort(u.Host)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(servicePort(t, b.clusterIP, "http").Port), port)
	name, rest, _ := strings.Cut(host, ".")
	require.Equal(t, b.clusterIP.Name, name, "http_sd asks the pushring Service")
	ns, suffix, _ := strings.Cut(rest, ".")
	require.True(t, suffix == "svc" || strings.HasPrefix(suffix, "svc."), "host %s is not a Service DNS name", host)

	k8sNS := scrapeConfigIn(t, objs, "scrape-kubernetes-sd.yml").KubernetesSDConfigs[0].Namespaces.Names[0]
	require.Equal(t, k8sNS, ns, "both examples assume the same namespace")

	lset := map[string]string{"__address__": "10.0.0.1:9091", "__meta_url": u.String(), "job": sc.JobName}
	out := relabel(t, lset, sc.RelabelConfigs)
	require.NotNil(t, out)
	requireOnlyJobAndInstance(t, "http_sd", out)
}

func TestPodMonitor(t *testing.T) {
	b := loadBase(t)
	pm := one[podMonitor](t, loadAll(t), promDir)
	require.Equal(t, "monitoring.coreos.com/v1", pm.APIVersion)

	podLabels := b.sts.Spec.Template.Labels
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	require.NoError(t, err)
	require.False(t, sel.Empty())
	require.True(t, sel.Matches(labels.Set(podLabels)))

	require.Len(t, pm.Spec.PodMetricsEndpoints, 1)
	ep := pm.Spec.PodMetricsEndpoints[0]
	require.True(t, ep.HonorLabels, "honorLabels must be true, as for the Pushgateway")
	require.Equal(t, "http", ep.Port)
	c := container(t, &b.sts.Spec.Template.Spec)
	containerPort(t, c, servicePort(t, b.clusterIP, "http").TargetPort, corev1.ProtocolTCP)
	require.Contains(t, []string{"", "/metrics"}, ep.Path)

	var cfgs []relabelConfig
	for _, r := range ep.Relabelings {
		cfgs = append(cfgs, relabelConfig{
			SourceLabels: r.SourceLabels, Separator: r.Separator, Regex: r.Regex,
			TargetLabel: r.TargetLabel, Replacement: r.Replacement, Action: strings.ToLower(r.Action),
		})
	}
	// The operator sets these target labels before the endpoint's own
	// relabelings run.
	lset := podTargets(c, podLabels, "monitoring", "pushring-0", "10.0.0.1")[0]
	for k, v := range map[string]string{
		"job":       "monitoring/" + pm.Name,
		"namespace": "monitoring",
		"container": c.Name,
		"pod":       "pushring-0",
		"endpoint":  ep.Port,
	} {
		lset[k] = v
	}
	out := relabel(t, lset, cfgs)
	require.NotNil(t, out)
	requireOnlyJobAndInstance(t, "PodMonitor", out)
	require.Equal(t, "pushring-0", targetLabels(out)["instance"])
}

func TestRelabel(t *testing.T) {
	str := func(s string) *string { return &s }
	lset := map[string]string{"__a": "x-1", "pod": "p", "keep": "me"}
	out := relabel(t, lset, []relabelConfig{
		{SourceLabels: []string{"__a"}, Regex: str(`x-(\d)`), TargetLabel: "n", Replacement: str("n$1")},
		{Action: "labeldrop", Regex: str("po.")},
		{SourceLabels: []string{"keep"}, Regex: str("me"), Action: "keep"},
	})
	require.Equal(t, map[string]string{"__a": "x-1", "n": "n1", "keep": "me"}, out)
	require.Nil(t, relabel(t, map[string]string{"a": "b"}, []relabelConfig{{SourceLabels: []string{"a"}, Regex: str("c"), Action: "keep"}}))
}
