package loadtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// NodeBodies returns n successive bodies one simulated node with series
// series sends, in format, each after one advance of its metrics: what
// client_golang's push package puts on the wire (delimited protobuf) or
// text 0.0.4. The bodies have the same series (and, in protobuf, the same
// created timestamps) and the values of n advances. Benchmarks that
// replay fixed bodies (cmd/pushbench) use them, so they push what the
// harness's nodes push.
func NodeBodies(format Format, series int, seed uint64, n int) ([][]byte, error) {
	if series < fixedSeries {
		return nil, fmt.Errorf("a node pushes at least %d series", fixedSeries)
	}
	nd := &node{name: nodeName(0), rng: rand.New(rand.NewPCG(seed, 0))}
	reg := prometheus.NewRegistry()
	if err := nd.register(reg, series); err != nil {
		return nil, err
	}
	f := expfmt.NewFormat(expfmt.TypeProtoDelim)
	if format == FormatText {
		f = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	var out [][]byte
	for i := range n {
		nd.advance(time.Unix(1_700_000_000+int64(i), 0))
		mfs, err := reg.Gather()
		if err != nil {
			return nil, fmt.Errorf("gather: %w", err)
		}
		var b bytes.Buffer
		enc := expfmt.NewEncoder(&b, f)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return nil, fmt.Errorf("encode %s: %w", mf.GetName(), err)
			}
		}
		out = append(out, b.Bytes())
	}
	return out, nil
}
