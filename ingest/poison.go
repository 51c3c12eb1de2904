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

// poisonSlabs overwrites the chunks reuseSlabs would hand to the next
// push. Only those are ever reused: earlier chunks of a slab are left to
// the collector, so pointers into them stay valid. Interned strings are
// not poisoned: they never change, and the store may keep them.
func (c *clientSlabs) poisonSlabs() {
	for i := range c.strs.buf {
		c.strs.buf[i] = releasedString
	}
	for i := range c.floats.buf {
		c.floats.buf[i] = releasedValue
	}
	for i := range c.pairs.buf {
		c.pairs.buf[i].Name, c.pairs.buf[i].Value = &releasedString, &releasedString
	}
	for i := range c.metrics.buf {
		c.metrics.buf[i] = dto.Metric{}
	}
	for i := range c.counters.buf {
		c.counters.buf[i] = dto.Counter{Value: &releasedValue}
	}
	for i := range c.gauges.buf {
		c.gauges.buf[i] = dto.Gauge{Value: &releasedValue}
	}
	for i := range c.untyped.buf {
		c.untyped.buf[i] = dto.Untyped{Value: &releasedValue}
	}
	for i := range c.families.buf {
		c.families.buf[i] = dto.MetricFamily{Name: &releasedString}
	}
	for i := range c.types.buf {
		c.types.buf[i] = releasedType
	}
	for i := range c.uints.buf {
		c.uints.buf[i] = 0xdead
	}
	for i := range c.histograms.buf {
		c.histograms.buf[i] = dto.Histogram{SampleSum: &releasedValue}
	}
	for i := range c.buckets.buf {
		c.buckets.buf[i] = dto.Bucket{UpperBound: &releasedValue}
	}
	clear(c.labels)
	clear(c.metricPtrs.buf)
	clear(c.bucketPtrs.buf)
	clear(c.fams)
}

// poison is poisonSlabs and the text parser's own slabs.
func (p *textParser) poison() {
	p.poisonSlabs()
	for i := range p.stamps.buf {
		p.stamps.buf[i] = releasedStamp
	}
}

// poison is poisonSlabs and the protobuf decoder's own slabs.
func (d *protoSlabs) poison() {
	d.poisonSlabs()
	for i := range d.stamps.buf {
		d.stamps.buf[i].Seconds, d.stamps.buf[i].Nanos = releasedStamp, 1
	}
}
