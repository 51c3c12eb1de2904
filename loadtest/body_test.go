package loadtest

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// NodeBodies are a node's pushes: in text, the series a node with -series
// pushes; in protobuf, the same families; from one push to the next, the
// same series with other values.
func TestNodeBodies(t *testing.T) {
	texts, err := NodeBodies(FormatText, 40, 1, 2)
	require.NoError(t, err)
	text := texts[0]
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	require.NoError(t, err)
	require.ElementsMatch(t, pushedFamilies, keys(fams))
	require.Equal(t, 40, bytes.Count(text, []byte("\n"))-2*len(fams), "40 sample lines besides HELP and TYPE")

	next, err := p.TextToMetricFamilies(bytes.NewReader(texts[1]))
	require.NoError(t, err)
	require.NotEqual(t, text, texts[1], "other values")
	for name, mf := range fams {
		require.Len(t, next[name].GetMetric(), len(mf.GetMetric()), name)
		for i, m := range mf.GetMetric() {
			require.Equal(t, m.GetLabel(), next[name].GetMetric()[i].GetLabel(), name)
		}
	}

	pbs, err := NodeBodies(FormatProtobuf, 40, 1, 1)
	require.NoError(t, err)
	require.NotEmpty(t, pbs[0])
	require.NotEqual(t, text, pbs[0])

	_, err = NodeBodies(FormatText, fixedSeries-1, 1, 1)
	require.Error(t, err)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
