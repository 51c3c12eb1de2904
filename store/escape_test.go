package store_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

// TestExpositionEscaping pushes a family with a UTF-8 name and label name
// next to a legacy one and scrapes it with every escaping scheme: as pushed
// (quoted in text) with allow-utf-8, escaped otherwise, the legacy family
// unchanged by every scheme (as model.EscapeMetricFamily leaves it).
func TestExpositionEscaping(t *testing.T) {
	s, _ := newStore(t, nil)
	k := key("job", "j")
	at := time.Unix(1700000000, 0)
	apply(t, s, famPush(k, true, at,
		fam("my.metric", dto.MetricType_GAUGE, proto.String("dotted"), gaugeM(1, "la.bel", "v")),
		fam("plain_total", dto.MetricType_COUNTER, nil, counterM(2))))

	cases := []struct {
		scheme     model.EscapingScheme
		utf8, want string // a line of the UTF-8 family, and of the legacy one
		legacy     string
	}{
		{model.NoEscaping, `{"my.metric",instance="",job="j","la.bel"="v"} 1`, `# TYPE "my.metric" gauge`, `plain_total{instance="",job="j"} 2`},
		{model.UnderscoreEscaping, `my_metric{instance="",job="j",la_bel="v"} 1`, `# TYPE my_metric gauge`, `plain_total{instance="",job="j"} 2`},
		{model.ValueEncodingEscaping, `U__my_2e_metric{instance="",job="j",U__la_2e_bel="v"} 1`, `# HELP U__my_2e_metric dotted`, `plain_total{instance="",job="j"} 2`},
		{model.DotsEscaping, `my_dot_metric{instance="",job="j",la_dot_bel="v"} 1`, `# TYPE my_dot_metric gauge`, `plain_total{instance="",job="j"} 2`},
	}
	for _, c := range cases {
		t.Run(c.scheme.String(), func(t *testing.T) {
			text := string(scrape(t, s, store.FormatText.WithEscaping(c.scheme)))
			require.Contains(t, text, c.utf8+"\n")
			require.Contains(t, text, c.want+"\n")
			require.Contains(t, text, c.legacy+"\n")

			// Protobuf carries the same names.
			var names []string
			r := bytes.NewReader(scrape(t, s, store.FormatProtoDelim.WithEscaping(c.scheme)))
			for r.Len() > 0 {
				mf := &dto.MetricFamily{}
				require.NoError(t, protodelim.UnmarshalFrom(r, mf))
				names = append(names, mf.GetName())
				for _, m := range mf.Metric {
					for _, lp := range m.Label {
						names = append(names, lp.GetName())
					}
				}
			}
			if c.scheme != model.NoEscaping {
				for _, n := range names {
					require.True(t, model.LegacyValidation.IsValidLabelName(n), "%q escaped with %s", n, c.scheme)
				}
			}
		})
	}

	// A scraper that did not ask for allow-utf-8 can parse the text with
	// the legacy parser.
	p := expfmt.NewTextParser(model.LegacyValidation)
	_, err := p.TextToMetricFamilies(bytes.NewReader(scrape(t, s, store.FormatText.WithEscaping(model.UnderscoreEscaping))))
	require.NoError(t, err)
	// The unescaped text parses with the UTF-8 parser into the pushed names.
	p = expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(scrape(t, s, store.FormatText)))
	require.NoError(t, err)
	require.Contains(t, mfs, "my.metric")
	require.Equal(t, "la.bel", mfs["my.metric"].Metric[0].Label[2].GetName())
}

// TestEscapedNameFreedOnDelete checks that a UTF-8 name stops blocking its
// escaped form once its last group is gone.
func TestEscapedNameFreedOnDelete(t *testing.T) {
	s, _ := newStore(t, nil)
	a, b := key("job", "a"), key("job", "b")
	at := time.Unix(1700000000, 0)
	apply(t, s, famPush(a, true, at, fam("a.b", dto.MetricType_GAUGE, nil, gaugeM(1))))
	require.Error(t, s.Apply(famPush(b, true, at, fam("a_b", dto.MetricType_GAUGE, nil, gaugeM(1)))))
	require.True(t, s.Delete(a))
	apply(t, s, famPush(b, true, at, fam("a_b", dto.MetricType_GAUGE, nil, gaugeM(1))))
	checkInvariants(t, s)
}

// A family replaced by one with a UTF-8 label name under the same family
// name is escaped from the next scrape on, and no longer once it is
// replaced by a legacy one again: the scrape's view follows the
// replacement.
func TestEscapingFollowsReplacedFamily(t *testing.T) {
	s, err := store.New(store.Config{}, nil, nil)
	require.NoError(t, err)
	key := store.NewGroupKey(map[string]string{"job": "j"})
	push := func(label string) {
		t.Helper()
		require.NoError(t, s.Apply(store.Push{Key: key, Replace: true, Time: time.Unix(1_700_000_000, 0),
			Families: map[string]*dto.MetricFamily{"m": {Name: proto.String("m"), Type: dto.MetricType_GAUGE.Enum(),
				Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("job"), Value: proto.String("j")}, {Name: proto.String(label), Value: proto.String("v")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}}}))
	}
	scrape := func(gzipped bool) string {
		t.Helper()
		var b bytes.Buffer
		f := store.FormatText.WithEscaping(model.UnderscoreEscaping)
		if !gzipped {
			require.NoError(t, s.WriteExposition(&b, f, nil))
			return b.String()
		}
		require.NoError(t, s.WriteExpositionGzip(&b, f, nil))
		zr, err := gzip.NewReader(&b)
		require.NoError(t, err)
		out, err := io.ReadAll(zr)
		require.NoError(t, err)
		return string(out)
	}
	for _, gzipped := range []bool{false, true} {
		push("l")
		require.Contains(t, scrape(gzipped), `m{job="j",l="v"} 1`)
		push("a.b")
		require.Contains(t, scrape(gzipped), `m{a_b="v",job="j"} 1`, "escaped once the family has a UTF-8 label name")
		push("l")
		require.Contains(t, scrape(gzipped), `m{job="j",l="v"} 1`)
	}
}
