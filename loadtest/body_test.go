package loadtest

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// NodeBody is a node's push: in text, the series a node with -series
// pushes; in protobuf, the same families.
func TestNodeBody(t *testing.T) {
	text, err := NodeBody(FormatText, 40, 1)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	require.NoError(t, err)
	require.ElementsMatch(t, pushedFamilies, keys(fams))
	require.Equal(t, 40, bytes.Count(text, []byte("\n"))-2*len(fams), "40 sample lines besides HELP and TYPE")

	pb, err := NodeBody(FormatProtobuf, 40, 1)
	require.NoError(t, err)
	require.NotEmpty(t, pb)
	require.NotEqual(t, text, pb)

	_, err = NodeBody(FormatText, fixedSeries-1, 1)
	require.Error(t, err)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
