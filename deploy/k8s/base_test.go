package k8s_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Flag defaults of the gateway, used when the manifests leave a flag out.
const (
	defaultDrainTimeout      = 20 * time.Second
	defaultLeaveTimeout      = 5 * time.Second
	defaultGRPCListenAddress = ":9092"
	containerName            = "pushring"
)

// baseDir holds the kustomize base, beside (not above) the overlays: a
// kustomization may not build on a directory that contains it.
const baseDir = "base"

// base is the kustomize base: the objects `kubectl apply -k deploy/k8s/base`
// creates.
type base struct {
	kust      *kustomization
	sts       *appsv1.StatefulSet
	headless  *corev1.Service // clusterIP: None; the gossip seed
	clusterIP *corev1.Service // what pushers use
	pdb       *policyv1.PodDisruptionBudget
	sa        *corev1.ServiceAccount
	rules     *corev1.ConfigMap
}

func loadBase(t *testing.T) base {
	t.Helper()
	objs := loadAll(t)
	b := base{
		kust:  one[kustomization](t, objs, baseDir),
		sts:   one[appsv1.StatefulSet](t, objs, baseDir),
		pdb:   one[policyv1.PodDisruptionBudget](t, objs, baseDir),
		sa:    one[corev1.ServiceAccount](t, objs, baseDir),
		rules: one[corev1.ConfigMap](t, objs, baseDir),
	}
	svcs := inDir[corev1.Service](objs, baseDir)
	require.Len(t, svcs, 2, "the base has a headless and a ClusterIP Service")
	for _, s := range svcs {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			b.headless = s
		} else {
			b.clusterIP = s
		}
	}
	require.NotNil(t, b.headless, "no headless Service (clusterIP: None)")
	require.NotNil(t, b.clusterIP, "no ClusterIP Service")
	return b
}

// container returns the pushring container of a pod spec.
func container(t *testing.T, spec *corev1.PodSpec) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == containerName {
			return &spec.Containers[i]
		}
	}
	require.FailNow(t, "no container named "+containerName)
	return nil
}

// flagValue returns the value of the last --name=value in args, and whether
// there was one.
func flagValue(args []string, name string) (string, bool) {
	value, found := "", false
	for _, a := range args {
		n, v, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n == name {
			value, found = v, true
		}
	}
	return value, found
}

// flagPort returns the port of a host:port flag, or of def if the flag is
// absent.
func flagPort(t *testing.T, args []string, name, def string) int32 {
	t.Helper()
	v, ok := flagValue(args, name)
	if !ok {
		v = def
	}
	require.NotEmptyf(t, v, "--%s is not set", name)
	_, port, err := net.SplitHostPort(v)
	require.NoErrorf(t, err, "--%s=%s", name, v)
	n, err := strconv.ParseInt(port, 10, 32)
	require.NoErrorf(t, err, "--%s=%s", name, v)
	return int32(n)
}

// flagDuration returns the duration of a flag, or def if it is absent.
func flagDuration(t *testing.T, args []string, name string, def time.Duration) time.Duration {
	t.Helper()
	v, ok := flagValue(args, name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoErrorf(t, err, "--%s=%s", name, v)
	return d
}

func TestBaseKustomizationListsEveryManifest(t *testing.T) {
	b := loadBase(t)
	require.Empty(t, b.kust.Namespace, "the base must not pick a namespace; kubectl -n or an overlay does")

	entries, err := os.ReadDir(baseDir)
	require.NoError(t, err)
	var manifests []string
	for _, e := range entries {
		if !e.IsDir() && isYAML(e.Name()) && e.Name() != "kustomization.yaml" {
			manifests = append(manifests, e.Name())
		}
	}
	require.ElementsMatch(t, manifests, b.kust.Resources,
		"every manifest in deploy/k8s/base is a resource of the base, and every resource is a manifest there")
	for _, r := range b.kust.Resources {
		require.NotContainsf(t, r, "/", "base resource %q: the examples under prometheus/ and optional/ stay out of the base", r)
	}
}

func TestKustomizationsReferToExistingFiles(t *testing.T) {
	objs := loadAll(t)
	for _, o := range objs {
		k, ok := o.value.(*kustomization)
		if !ok {
			continue
		}
		dir := filepath.Dir(o.file)
		for _, r := range append(slices.Clone(k.Resources), k.Components...) {
			fi, err := os.Stat(filepath.Join(dir, r))
			require.NoErrorf(t, err, "%s: resource %q", o.file, r)
			if fi.IsDir() {
				_, err := os.Stat(filepath.Join(dir, r, "kustomization.yaml"))
				require.NoErrorf(t, err, "%s: resource %q is a directory without kustomization.yaml", o.file, r)
			}
		}
		for _, p := range k.Patches {
			_, err := os.Stat(filepath.Join(dir, p.Path))
			require.NoErrorf(t, err, "%s: patch %q", o.file, p.Path)
		}
	}
}

func TestBaseLabelsAndImages(t *testing.T) {
	b := loadBase(t)
	for _, l := range b.kust.Labels {
		// kustomize would add the labels to the selectors, and the
		// selector of an existing StatefulSet cannot be changed.
		require.False(t, l.IncludeSelectors, "kustomization labels must not include selectors")
	}
	c := container(t, &b.sts.Spec.Template.Spec)
	repo, _, _ := strings.Cut(c.Image, ":")
	require.Len(t, b.kust.Images, 1)
	require.Equal(t, repo, b.kust.Images[0].Name, "the images entry must name the container's image, or it changes nothing")
}

func TestNoObjectPicksANamespace(t *testing.T) {
	for _, o := range loadAll(t) {
		if m, ok := o.value.(metav1.Object); ok {
			require.Emptyf(t, m.GetNamespace(), "%s: %s sets metadata.namespace", o.file, m.GetName())
		}
	}
}

func TestSelectorsMatchThePods(t *testing.T) {
	b := loadBase(t)
	podLabels := labels.Set(b.sts.Spec.Template.Labels)
	require.NotEmpty(t, podLabels)

	sel, err := metav1.LabelSelectorAsSelector(b.sts.Spec.Selector)
	require.NoError(t, err)
	require.False(t, sel.Empty(), "StatefulSet selector is empty")
	require.True(t, sel.Matches(podLabels), "StatefulSet selector does not match its pod template")

	for _, svc := range []*corev1.Service{b.headless, b.clusterIP} {
		require.NotEmptyf(t, svc.Spec.Selector, "Service %s selects nothing", svc.Name)
		require.Truef(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels),
			"Service %s selector does not match the pod template", svc.Name)
	}

	sel, err = metav1.LabelSelectorAsSelector(b.pdb.Spec.Selector)
	require.NoError(t, err)
	require.False(t, sel.Empty(), "PodDisruptionBudget selector is empty")
	require.True(t, sel.Matches(podLabels), "PodDisruptionBudget selector does not match the pod template")

	aff := b.sts.Spec.Template.Spec.Affinity
	require.NotNil(t, aff)
	require.NotNil(t, aff.PodAntiAffinity)
	terms := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	require.NotEmpty(t, terms, "peers should prefer different nodes")
	require.Equal(t, corev1.LabelHostname, terms[0].PodAffinityTerm.TopologyKey)
	sel, err = metav1.LabelSelectorAsSelector(terms[0].PodAffinityTerm.LabelSelector)
	require.NoError(t, err)
	require.True(t, sel.Matches(podLabels), "anti-affinity does not select the peers")
}

func TestHeadlessServiceIsTheGossipSeed(t *testing.T) {
	b := loadBase(t)
	require.Equal(t, b.headless.Name, b.sts.Spec.ServiceName, "the StatefulSet's serviceName is the headless Service")
	require.True(t, b.headless.Spec.PublishNotReadyAddresses,
		"peers join before they are ready, so the seed must list peers that are not ready")

	args := container(t, &b.sts.Spec.Template.Spec).Args
	seed, ok := flagValue(args, "cluster.peer")
	require.True(t, ok, "no --cluster.peer")
	host, port, err := net.SplitHostPort(seed)
	require.NoError(t, err)
	require.True(t, host == b.headless.Name || strings.HasPrefix(host, b.headless.Name+"."),
		"--cluster.peer=%s does not name the headless Service %s", seed, b.headless.Name)
	gossip := servicePort(t, b.headless, "gossip-tcp")
	require.Equal(t, strconv.Itoa(int(gossip.Port)), port, "--cluster.peer port is not the headless Service's gossip port")
}

func TestClusterIPServiceServesPushes(t *testing.T) {
	b := loadBase(t)
	require.Contains(t, []corev1.ServiceType{"", corev1.ServiceTypeClusterIP}, b.clusterIP.Spec.Type)
	require.Len(t, b.clusterIP.Spec.Ports, 1)
	p := servicePort(t, b.clusterIP, "http")
	require.EqualValues(t, 9091, p.Port, "pushers keep the Pushgateway's port")
	require.Equal(t, corev1.ProtocolTCP, p.Protocol)
}

func servicePort(t *testing.T, svc *corev1.Service, name string) corev1.ServicePort {
	t.Helper()
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return p
		}
	}
	require.FailNowf(t, "missing port", "Service %s has no port named %s", svc.Name, name)
	return corev1.ServicePort{}
}

// containerPort resolves a Service targetPort or probe port (a name or a
// number) to a container port.
func containerPort(t *testing.T, c *corev1.Container, target intstr.IntOrString, proto corev1.Protocol) corev1.ContainerPort {
	t.Helper()
	for _, p := range c.Ports {
		match := p.Name == target.StrVal
		if target.Type == intstr.Int {
			match = p.ContainerPort == target.IntVal
		}
		if match && protocol(p.Protocol) == protocol(proto) {
			return p
		}
	}
	require.FailNowf(t, "unresolved port", "container %s has no %s port %s", c.Name, protocol(proto), target.String())
	return corev1.ContainerPort{}
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func TestPortsAgreeWithServicesAndFlags(t *testing.T) {
	b := loadBase(t)
	c := container(t, &b.sts.Spec.Template.Spec)

	want := map[string]struct {
		port  int32
		proto corev1.Protocol
	}{
		"http":       {9091, corev1.ProtocolTCP},
		"grpc":       {9092, corev1.ProtocolTCP},
		"gossip-tcp": {7946, corev1.ProtocolTCP},
		"gossip-udp": {7946, corev1.ProtocolUDP},
	}
	require.Len(t, c.Ports, len(want))
	for _, p := range c.Ports {
		w, ok := want[p.Name]
		require.Truef(t, ok, "unexpected container port %s", p.Name)
		require.Equalf(t, w.port, p.ContainerPort, "container port %s", p.Name)
		require.Equalf(t, w.proto, protocol(p.Protocol), "container port %s", p.Name)
	}

	// Both Services reach the container ports they name, and the headless
	// one exposes each under the container's own number.
	for _, svc := range []*corev1.Service{b.headless, b.clusterIP} {
		for _, sp := range svc.Spec.Ports {
			cp := containerPort(t, c, sp.TargetPort, sp.Protocol)
			require.Equalf(t, cp.ContainerPort, sp.Port, "Service %s port %s", svc.Name, sp.Name)
		}
	}
	require.Len(t, b.headless.Spec.Ports, len(want), "the headless Service lists every peer port")

	args := c.Args
	http := containerPort(t, c, intstr.FromString("http"), corev1.ProtocolTCP).ContainerPort
	grpc := containerPort(t, c, intstr.FromString("grpc"), corev1.ProtocolTCP).ContainerPort
	gossip := containerPort(t, c, intstr.FromString("gossip-tcp"), corev1.ProtocolTCP).ContainerPort
	require.Equal(t, gossip, containerPort(t, c, intstr.FromString("gossip-udp"), corev1.ProtocolUDP).ContainerPort)

	require.Equal(t, http, flagPort(t, args, "web.listen-address", ":9091"), "--web.listen-address")
	require.Equal(t, grpc, flagPort(t, args, "cluster.grpc-listen-address", defaultGRPCListenAddress), "--cluster.grpc-listen-address")
	require.Equal(t, gossip, flagPort(t, args, "cluster.listen-address", ""), "--cluster.listen-address")
	require.Equal(t, gossip, flagPort(t, args, "cluster.advertise-address", ""), "--cluster.advertise-address")
}

func TestAdvertiseAddressIsThePodIP(t *testing.T) {
	b := loadBase(t)
	c := container(t, &b.sts.Spec.Template.Spec)
	adv, ok := flagValue(c.Args, "cluster.advertise-address")
	require.True(t, ok, "--cluster.advertise-address is needed: a pod has no other way to know the IP peers reach it at")
	host, _, err := net.SplitHostPort(adv)
	require.NoError(t, err)
	require.Regexp(t, `^\$\([A-Z_]+\)$`, host)
	env := envVar(t, c, strings.TrimSuffix(strings.TrimPrefix(host, "$("), ")"))
	require.NotNil(t, env.ValueFrom)
	require.NotNil(t, env.ValueFrom.FieldRef)
	require.Equal(t, "status.podIP", env.ValueFrom.FieldRef.FieldPath)
}

func envVar(t *testing.T, c *corev1.Container, name string) corev1.EnvVar {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			return e
		}
	}
	require.FailNowf(t, "missing env", "container %s has no env var %s", c.Name, name)
	return corev1.EnvVar{}
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// Kubernetes leaves $(NAME) untouched when NAME is not an env var of the
// container, which would reach the gateway as a literal.
func TestArgsReferOnlyToDefinedEnv(t *testing.T) {
	b := loadBase(t)
	c := container(t, &b.sts.Spec.Template.Spec)
	for _, a := range c.Args {
		require.Truef(t, strings.HasPrefix(a, "--"), "arg %q: write flags as --name=value", a)
		for _, m := range varRef.FindAllStringSubmatch(a, -1) {
			envVar(t, c, m[1])
		}
	}
}

func TestProbes(t *testing.T) {
	b := loadBase(t)
	c := container(t, &b.sts.Spec.Template.Spec)
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startup", c.StartupProbe, "/-/healthy"},
		{"liveness", c.LivenessProbe, "/-/healthy"},
		{"readiness", c.ReadinessProbe, "/-/ready"},
	} {
		require.NotNilf(t, p.probe, "no %s probe", p.name)
		require.NotNilf(t, p.probe.HTTPGet, "%s probe is not an HTTP GET", p.name)
		require.Equalf(t, p.path, p.probe.HTTPGet.Path, "%s probe path", p.name)
		require.Equalf(t, intstr.FromString("http"), p.probe.HTTPGet.Port, "%s probe port", p.name)
		containerPort(t, c, p.probe.HTTPGet.Port, corev1.ProtocolTCP)
	}
}

func TestSecurityContext(t *testing.T) {
	b := loadBase(t)
	pod := b.sts.Spec.Template.Spec
	c := container(t, &pod)
	psc, csc := pod.SecurityContext, c.SecurityContext
	require.NotNil(t, psc)
	require.NotNil(t, csc)

	nonRoot := (psc.RunAsNonRoot != nil && *psc.RunAsNonRoot) || (csc.RunAsNonRoot != nil && *csc.RunAsNonRoot)
	require.True(t, nonRoot, "runAsNonRoot")
	require.NotNil(t, psc.RunAsUser)
	require.EqualValues(t, 65532, *psc.RunAsUser, "the distroless nonroot user")
	require.NotNil(t, psc.FSGroup, "fsGroup makes a volume (the persistent overlay's) writable by the user")
	require.NotNil(t, psc.SeccompProfile)
	require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)

	require.NotNil(t, csc.ReadOnlyRootFilesystem)
	require.True(t, *csc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem")
	require.NotNil(t, csc.AllowPrivilegeEscalation)
	require.False(t, *csc.AllowPrivilegeEscalation, "allowPrivilegeEscalation")
	require.NotNil(t, csc.Capabilities)
	require.Equal(t, []corev1.Capability{"ALL"}, csc.Capabilities.Drop)
	require.Empty(t, csc.Capabilities.Add)
	require.Nil(t, csc.Privileged)

	require.NotNil(t, b.sa.AutomountServiceAccountToken)
	require.False(t, *b.sa.AutomountServiceAccountToken, "pushring calls no Kubernetes API")
	require.Equal(t, b.sa.Name, pod.ServiceAccountName)

	require.False(t, c.Resources.Requests.Cpu().IsZero(), "CPU request")
	require.False(t, c.Resources.Requests.Memory().IsZero(), "memory request")
	require.False(t, c.Resources.Limits.Memory().IsZero(), "memory limit")
}

func TestGracePeriodCoversLeaveAndDrain(t *testing.T) {
	b := loadBase(t)
	args := container(t, &b.sts.Spec.Template.Spec).Args
	drain := flagDuration(t, args, "cluster.drain-timeout", defaultDrainTimeout)
	leave := flagDuration(t, args, "cluster.leave-timeout", defaultLeaveTimeout)
	grace := b.sts.Spec.Template.Spec.TerminationGracePeriodSeconds
	require.NotNil(t, grace, "the default grace period (30 s) is too close to the drain timeout")
	require.Greaterf(t, time.Duration(*grace)*time.Second, drain+leave,
		"terminationGracePeriodSeconds must exceed --cluster.drain-timeout (%s) + --cluster.leave-timeout (%s)", drain, leave)
}

func TestReplicasAndRollout(t *testing.T) {
	b := loadBase(t)
	spec := b.sts.Spec
	require.NotNil(t, spec.Replicas)
	require.GreaterOrEqual(t, *spec.Replicas, int32(3))
	require.Equal(t, appsv1.RollingUpdateStatefulSetStrategyType, spec.UpdateStrategy.Type)
	if ru := spec.UpdateStrategy.RollingUpdate; ru != nil {
		require.True(t, ru.Partition == nil || *ru.Partition == 0, "a partition would hold back part of every rollout")
		require.True(t, ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() == 1, "one peer at a time")
	}
	require.NotNil(t, b.pdb.Spec.MaxUnavailable)
	require.Equal(t, intstr.FromInt32(1), *b.pdb.Spec.MaxUnavailable)
	require.Nil(t, b.pdb.Spec.MinAvailable)
}

// rulesFile returns the path --push.ttl-rules-file names and the key of the
// rules ConfigMap it reads, after checking the mount in between.
func rulesFile(t *testing.T, b base) (path, key string) {
	t.Helper()
	pod := b.sts.Spec.Template.Spec
	c := container(t, &pod)
	path, ok := flagValue(c.Args, "push.ttl-rules-file")
	require.True(t, ok, "no --push.ttl-rules-file")
	dir, key := filepath.Dir(path), filepath.Base(path)

	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == dir {
			mount = &c.VolumeMounts[i]
		}
	}
	require.NotNilf(t, mount, "nothing is mounted at %s, the directory of --push.ttl-rules-file", dir)
	require.Empty(t, mount.SubPath, "a subPath mount never sees ConfigMap updates")
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == mount.Name {
			vol = &pod.Volumes[i]
		}
	}
	require.NotNilf(t, vol, "no volume %s", mount.Name)
	require.NotNil(t, vol.ConfigMap, "the rules volume is not a ConfigMap")
	require.Equal(t, b.rules.Name, vol.ConfigMap.Name)
	require.Empty(t, vol.ConfigMap.Items)
	require.Containsf(t, b.rules.Data, key, "ConfigMap %s has no key %s", b.rules.Name, key)
	return path, key
}
