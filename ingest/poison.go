package ingest

import (
	"math"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
)

// poisonReleased makes a released parser overwrite what it would reuse
// with poison and stay out of its pool (tests set it): whatever still
// reads a family after its push was released then reads values no client
// sends instead of the next push's.
var poisonReleased atomic.Bool

// The poison: a name no client can send and a NaN with a payload.
var (
	releasedString = "\x00released"
	releasedValue  = math.Float64frombits(0x7ff8_dead_0000_0001)
	releasedType   = dto.MetricType(99)
	releasedStamp  = int64(-0xdead)
)

// poison overwrites the chunks release would hand to the next push. Only
// those are ever reused: earlier chunks of a slab are left to the
// collector, so pointers into them stay valid.
func (p *textParser) poison() {
	for i := range p.strs.buf {
		p.strs.buf[i] = releasedString
	}
	for i := range p.floats.buf {
		p.floats.buf[i] = releasedValue
	}
	for i := range p.pairs.buf {
		p.pairs.buf[i].Name, p.pairs.buf[i].Value = &releasedString, &releasedString
	}
	for i := range p.metrics.buf {
		p.metrics.buf[i] = dto.Metric{}
	}
	for i := range p.families.buf {
		p.families.buf[i] = dto.MetricFamily{Name: &releasedString}
	}
	for i := range p.types.buf {
		p.types.buf[i] = releasedType
	}
	for i := range p.counters.buf {
		p.counters.buf[i] = dto.Counter{Value: &releasedValue}
	}
	for i := range p.gauges.buf {
		p.gauges.buf[i] = dto.Gauge{Value: &releasedValue}
	}
	for i := range p.untyped.buf {
		p.untyped.buf[i] = dto.Untyped{Value: &releasedValue}
	}
	for i := range p.stamps.buf {
		p.stamps.buf[i] = releasedStamp
	}
	clear(p.labels)
	clear(p.fams)
}

// poison is textParser.poison for the protobuf decoder.
func (d *protoSlabs) poison() {
	for i := range d.strs.buf {
		d.strs.buf[i] = releasedString
	}
	for i := range d.floats.buf {
		d.floats.buf[i] = releasedValue
	}
	for i := range d.uints.buf {
		d.uints.buf[i] = 0xdead
	}
	for i := range d.pairs.buf {
		d.pairs.buf[i].Name, d.pairs.buf[i].Value = &releasedString, &releasedString
	}
	for i := range d.metrics.buf {
		d.metrics.buf[i] = dto.Metric{}
	}
	for i := range d.counters.buf {
		d.counters.buf[i] = dto.Counter{Value: &releasedValue}
	}
	for i := range d.gauges.buf {
		d.gauges.buf[i] = dto.Gauge{Value: &releasedValue}
	}
	for i := range d.untyped.buf {
		d.untyped.buf[i] = dto.Untyped{Value: &releasedValue}
	}
	for i := range d.histograms.buf {
		d.histograms.buf[i] = dto.Histogram{SampleSum: &releasedValue}
	}
	for i := range d.buckets.buf {
		d.buckets.buf[i] = dto.Bucket{UpperBound: &releasedValue}
	}
	for i := range d.stamps.buf {
		d.stamps.buf[i].Seconds, d.stamps.buf[i].Nanos = releasedStamp, 1
	}
	clear(d.labels)
	clear(d.fams)
}
