package store_test

// This file sorts after persist_test.go on purpose: package variables of a
// package's files initialise in file-name order, and defineUpdateFlag must
// see an -update flag that another test file of the binary defined first.

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

var _ = defineUpdateFlag()

// defineUpdateFlag defines -update unless a test file of the same binary
// already did; two definitions would panic.
func defineUpdateFlag() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
	return true
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// requireGolden compares got with testdata/<path>, or rewrites the file
// with -update.
func requireGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	path = filepath.Join("testdata", path)
	if updating() {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./store -run %s -update to create it", t.Name())
	require.Equal(t, string(want), string(got))
}

// Times of pushes in tests.
var (
	t1 = time.Unix(1_700_000_000, 123_456_789)
	t2 = t1.Add(time.Minute)
	t3 = t2.Add(time.Minute)
)

// newStore returns an empty store and the registry of its metrics.
func newStore(t testing.TB, reserved map[string]dto.MetricType) (*store.Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := store.New(store.Config{Reserved: reserved}, nil, reg)
	require.NoError(t, err)
	return s, reg
}

// key builds a grouping key from name/value pairs.
func key(kv ...string) store.GroupKey {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return store.NewGroupKey(m)
}

// parseText parses a text exposition, as the Pushgateway's text parser does.
func parseText(t testing.TB, text string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := parseTextErr(text)
	require.NoError(t, err)
	return fams
}

func parseTextErr(text string) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(strings.NewReader(text))
}

// sanitize does what ingest does before a push reaches the store: force the
// grouping labels onto every metric, add instance="" where missing, sort.
func sanitize(fams map[string]*dto.MetricFamily, k store.GroupKey) map[string]*dto.MetricFamily {
	for _, mf := range fams {
		for _, m := range mf.Metric {
			set := func(name, value string, force bool) {
				for _, lp := range m.Label {
					if lp.GetName() == name {
						if force {
							lp.Value = proto.String(value)
						}
						return
					}
				}
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
			}
			for _, l := range k.Labels() {
				set(l.Name, l.Value, true)
			}
			set("instance", "", false)
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
	}
	return fams
}

// textPush is a sanitised push of a text body.
func textPush(t testing.TB, k store.GroupKey, replace bool, at time.Time, text string) store.Push {
	t.Helper()
	return store.Push{Key: k, Replace: replace, Families: sanitize(parseText(t, text), k), Time: at}
}

// famPush is a sanitised push of families.
func famPush(k store.GroupKey, replace bool, at time.Time, mfs ...*dto.MetricFamily) store.Push {
	fams := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	return store.Push{Key: k, Replace: replace, Families: sanitize(fams, k), Time: at}
}

// rawPush is a push of families exactly as given (not sanitised).
func rawPush(k store.GroupKey, at time.Time, mfs ...*dto.MetricFamily) store.Push {
	fams := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	return store.Push{Key: k, Replace: true, Families: fams, Time: at}
}

// fam builds a family; help nil means no HELP.
func fam(name string, typ dto.MetricType, help *string, ms ...*dto.Metric) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Type: typ.Enum(), Help: help, Metric: ms}
}

// labels builds label pairs from name/value pairs, in the given order.
func labels(kv ...string) []*dto.LabelPair {
	var ls []*dto.LabelPair
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, &dto.LabelPair{Name: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return ls
}

func gaugeM(v float64, kv ...string) *dto.Metric {
	return &dto.Metric{Label: labels(kv...), Gauge: &dto.Gauge{Value: proto.Float64(v)}}
}

func counterM(v float64, kv ...string) *dto.Metric {
	return &dto.Metric{Label: labels(kv...), Counter: &dto.Counter{Value: proto.Float64(v)}}
}

// apply applies p and fails the test on error.
func apply(t testing.TB, s *store.Store, p store.Push) {
	t.Helper()
	require.NoError(t, s.Apply(p))
	checkInvariants(t, s)
}

func checkInvariants(t testing.TB, s *store.Store) {
	t.Helper()
	require.NoError(t, s.CheckInvariants())
}

// group returns the snapshot of group k, failing if it does not exist.
func group(t testing.TB, s *store.Store, k store.GroupKey) store.GroupSnapshot {
	t.Helper()
	g, ok := s.Group(k)
	require.True(t, ok, "group %v missing", k.Map())
	return g
}

// family returns the family name of g, or nil.
func family(g store.GroupSnapshot, name string) *store.FamilySnapshot {
	for i := range g.Families {
		if g.Families[i].Family.GetName() == name {
			return &g.Families[i]
		}
	}
	return nil
}

// familyNames lists the family names of g.
func familyNames(g store.GroupSnapshot) []string {
	var names []string
	for _, fs := range g.Families {
		names = append(names, fs.Family.GetName())
	}
	return names
}

// gaugeValue returns the value of the only metric of family name in g.
func gaugeValue(t testing.TB, g store.GroupSnapshot, name string) float64 {
	t.Helper()
	fs := family(g, name)
	require.NotNil(t, fs, "family %s missing", name)
	require.Len(t, fs.Family.Metric, 1)
	return fs.Family.Metric[0].GetGauge().GetValue()
}

// scrape returns the exposition of s in format f.
func scrape(t testing.TB, s *store.Store, f store.Format, extra ...*dto.MetricFamily) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, s.WriteExposition(&buf, f, extra))
	return buf.Bytes()
}

// metricValue returns the value of a counter or gauge of reg with the given
// label value (or no labels), 0 if absent.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labelValues ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			var vs []string
			for _, lp := range m.Label {
				vs = append(vs, lp.GetValue())
			}
			if slices.Equal(vs, labelValues) {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
