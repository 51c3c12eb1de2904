package k8s_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/pushring/pushring/deploy/internal/manifest"
	"github.com/pushring/pushring/ingest"
)

// moduleRoot returns pushring's module root, above deploy/.
func moduleRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	root, err := manifest.ModuleRoot(wd)
	require.NoError(t, err)
	return root
}

// helpFlags builds the gateway and returns the flag names its --help lists.
func helpFlags(t *testing.T) map[string]bool {
	t.Helper()
	flags, err := manifest.HelpFlags(t.Context(), moduleRoot(t), t.TempDir())
	require.NoError(t, err)
	return flags
}

func parseHelp(text string) map[string]bool { return manifest.ParseHelp(text) }

func TestParseHelp(t *testing.T) {
	got := parseHelp(`usage: pushring [<flags>]

Flags:
  -h, --[no-]help
      Show help; see also --not-a-flag.
  --web.listen-address=ADDRESS
      Address.
  --[no-]web.enable-lifecycle
  -cluster.peer value
    	Seed peer.
  -cluster.drain-timeout duration
`)
	want := []string{"h", "help", "web.listen-address", "web.enable-lifecycle", "cluster.peer", "cluster.drain-timeout"}
	require.Len(t, got, len(want))
	for _, w := range want {
		require.Truef(t, got[w], "missing %s", w)
	}
}

// usedFlags returns the flag names the container passes to the gateway.
func usedFlags(c *corev1.Container) []string {
	var names []string
	for _, a := range c.Args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		names = append(names, name)
	}
	return names
}

// Every flag in the pod specs, the persistent overlay's included, must be
// one the gateway knows: the flag package refuses unknown flags, so a typo
// would be a crash loop.
func TestFlagsExistInTheBinary(t *testing.T) {
	b := loadBase(t)
	used := usedFlags(container(t, &b.sts.Spec.Template.Spec))
	persistent := persistentStatefulSet(t, b)
	used = append(used, usedFlags(container(t, &persistent.Spec.Template.Spec))...)
	slices.Sort(used)
	used = slices.Compact(used)

	known := helpFlags(t)
	var missing []string
	for _, name := range used {
		if !known[name] {
			missing = append(missing, "--"+name)
		}
	}
	require.Empty(t, missing, "flags in deploy/k8s that `gateway --help` does not list")
}

// nopStore satisfies ingest.Store for loading rules; nothing is pushed.
type nopStore struct{ ingest.Store }

// The example rules file loads with the gateway's own parser: a file that
// does not would stop every peer from starting.
func TestTTLRulesExampleLoads(t *testing.T) {
	b := loadBase(t)
	_, key := rulesFile(t, b)
	text := b.rules.Data[key]
	require.Contains(t, text, "rules:")

	path := filepath.Join(t.TempDir(), key)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	_, err := ingest.New(ingest.Config{TTLRulesFile: path}, nopStore{}, nil, nil, nil)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(path, []byte("rules:\n  - job: edge\n    ttl: 10 minutes\n"), 0o600))
	_, err = ingest.New(ingest.Config{TTLRulesFile: path}, nopStore{}, nil, nil, nil)
	require.Error(t, err, "the loader must refuse a broken file, or this test proves nothing")
}

// The image runs as the user the pod spec names, and exposes the ports the
// container declares.
func TestDockerfileAgreesWithThePodSpec(t *testing.T) {
	b := loadBase(t)
	pod := b.sts.Spec.Template.Spec
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), "Dockerfile"))
	require.NoError(t, err)

	var user string
	var exposed []string
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "USER":
			user = fields[1]
		case "EXPOSE":
			exposed = append(exposed, fields[1:]...)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	require.Equal(t, strconv.FormatInt(*pod.SecurityContext.RunAsUser, 10), uid, "Dockerfile USER")
	for _, p := range container(t, &pod).Ports {
		want := strconv.Itoa(int(p.ContainerPort))
		if protocol(p.Protocol) == corev1.ProtocolUDP {
			want += "/udp"
		}
		require.Containsf(t, exposed, want, "Dockerfile EXPOSE lacks port %s", p.Name)
	}
}
