package loadtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// NodeBody returns the body one simulated node with series series sends,
// in format, after one advance of its metrics: what client_golang's push
// package puts on the wire (delimited protobuf) or text 0.0.4. Benchmarks
// that replay a fixed body (cmd/pushbench) use it, so they push what the
// harness's nodes push.
func NodeBody(format Format, series int, seed uint64) ([]byte, error) {
	if series < fixedSeries {
		return nil, fmt.Errorf("a node pushes at least %d series", fixedSeries)
	}
	n := &node{name: nodeName(0), rng: rand.New(rand.NewPCG(seed, 0))}
	reg := prometheus.NewRegistry()
	if err := n.register(reg, series); err != nil {
		return nil, err
	}
	n.advance(time.Unix(1_700_000_000, 0))
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	f := expfmt.NewFormat(expfmt.TypeProtoDelim)
	if format == FormatText {
		f = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, f)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	return b.Bytes(), nil
}
