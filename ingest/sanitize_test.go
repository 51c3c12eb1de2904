package ingest

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

// labelsOf renders a metric's label pairs in order as name="value" pairs.
func labelsOf(m *dto.Metric) string {
	var b strings.Builder
	for i, lp := range m.GetLabel() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(lp.GetName() + "=" + `"` + lp.GetValue() + `"`)
	}
	return b.String()
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		name string
		key  map[string]string
		body string
		want []string // labels of the metrics of family m, in body order
	}{
		{"instance added", map[string]string{"job": "j"},
			"m 1\n", []string{`instance="",job="j"`}},
		{"grouping labels forced", map[string]string{"job": "lb", "instance": "i9"},
			"m{job=\"other\",instance=\"x\",foo=\"bar\"} 1\n", []string{`foo="bar",instance="i9",job="lb"`}},
		{"body instance kept when not grouped", map[string]string{"job": "j"},
			"m{instance=\"a\"} 1\nm{instance=\"b\"} 2\n", []string{`instance="a",job="j"`, `instance="b",job="j"`}},
		{"sorted by name", map[string]string{"job": "j", "zone": "z", "a": "1"},
			"m{y=\"2\",b=\"3\",x=\"1\"} 1\n", []string{`a="1",b="3",instance="",job="j",x="1",y="2",zone="z"`}},
		{"some present some missing", map[string]string{"job": "j", "a": "1", "c": "3"},
			"m{c=\"x\",b=\"2\"} 1\nm 2\n", []string{`a="1",b="2",c="3",instance="",job="j"`, `a="1",c="3",instance="",job="j"`}},
		{"exported prefix untouched", map[string]string{"job": "j"},
			"m{exported_job=\"e\"} 1\n", []string{`exported_job="e",instance="",job="j"`}},
		{"empty grouping value forced", map[string]string{"job": "j", "instance": ""},
			"m{instance=\"x\"} 1\n", []string{`instance="",job="j"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fams := parseText(t, tt.body)
			Sanitize(fams, store.NewGroupKey(tt.key))
			var got []string
			for _, m := range fams["m"].GetMetric() {
				got = append(got, labelsOf(m))
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// Every metric of every family gets the labels, summaries and histograms
// included, and nothing else about a metric changes.
func TestSanitizeAllFamilies(t *testing.T) {
	text := string(readTestdata(t, "node.prom"))
	fams := parseText(t, text)
	ref := parseText(t, text)
	key := store.NewGroupKey(map[string]string{"job": "node", "instance": "edge-0042"})
	Sanitize(fams, key)
	for name, mf := range fams {
		for i, m := range mf.GetMetric() {
			got := map[string]string{}
			for j, lp := range m.GetLabel() {
				if j > 0 {
					require.Less(t, m.GetLabel()[j-1].GetName(), lp.GetName(), "family %s", name)
				}
				got[lp.GetName()] = lp.GetValue()
			}
			want := map[string]string{"job": "node", "instance": "edge-0042"}
			for _, lp := range ref[name].GetMetric()[i].GetLabel() {
				if _, grouped := want[lp.GetName()]; !grouped {
					want[lp.GetName()] = lp.GetValue()
				}
			}
			require.Equal(t, want, got, "family %s", name)
			stripped := proto.Clone(m).(*dto.Metric)
			stripped.Label = nil
			orig := proto.Clone(ref[name].GetMetric()[i]).(*dto.Metric)
			orig.Label = nil
			require.True(t, proto.Equal(orig, stripped), "family %s", name)
		}
	}
}

// Protobuf allows what text does not: duplicate names and unsorted pairs.
func TestSanitizeDuplicateNames(t *testing.T) {
	m := &dto.Metric{Label: []*dto.LabelPair{
		{Name: proto.String("job"), Value: proto.String("a")},
		{Name: proto.String("b"), Value: proto.String("1")},
		{Name: proto.String("job"), Value: proto.String("b")},
	}, Untyped: &dto.Untyped{Value: proto.Float64(1)}}
	fams := map[string]*dto.MetricFamily{"m": {Name: proto.String("m"), Metric: []*dto.Metric{m}}}
	Sanitize(fams, store.NewGroupKey(map[string]string{"job": "j"}))
	// Both job pairs are forced; the duplicate is left for the store's
	// check to reject.
	require.Equal(t, `b="1",instance="",job="j",job="j"`, labelsOf(m))
}

// Added label slices are carved from one block per family; appending to one
// metric's labels must not reach its neighbour's.
func TestSanitizeSlicesAreIndependent(t *testing.T) {
	fams := parseText(t, "m{a=\"1\"} 1\nm{a=\"2\"} 2\n")
	Sanitize(fams, store.NewGroupKey(map[string]string{"job": "j"}))
	ms := fams["m"].GetMetric()
	ms[0].Label = append(ms[0].Label, &dto.LabelPair{Name: proto.String("z"), Value: proto.String("z")})
	require.Equal(t, `a="2",instance="",job="j"`, labelsOf(ms[1]))
}

func TestSanitizeEmpty(t *testing.T) {
	fams := map[string]*dto.MetricFamily{"e": {Name: proto.String("e")}}
	Sanitize(fams, store.NewGroupKey(map[string]string{"job": "j"}))
	require.Empty(t, fams["e"].GetMetric())
	Sanitize(nil, store.NewGroupKey(map[string]string{"job": "j"}))
}
