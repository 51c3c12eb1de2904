package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
)

// SeqMetric is the gauge every node sets to its push sequence number (1, 2,
// …) before each push; the completeness check compares it with the last
// acknowledged push.
const SeqMetric = "loadtest_push_seq"

// TTLHeader is the per-request TTL header pushring understands; other
// Pushgateway-compatible targets ignore it.
const TTLHeader = "Pushring-TTL"

// histogramBuckets is the latency histogram every node exposes; with its
// +Inf bucket, _sum and _count it accounts for len+3 series.
var histogramBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// fixedSeries counts the series that do not depend on -series: the seq
// gauge, the timestamp gauge and the histogram.
var fixedSeries = 2 + len(histogramBuckets) + 3

// pushedFamilies names the families a node pushes; the check counts only
// these, as a gateway adds its own (push_time_seconds, …) to every group.
var pushedFamilies = []string{
	SeqMetric, "loadtest_push_timestamp_seconds", "edge_request_duration_seconds",
	"edge_network_receive_bytes_total", "edge_filesystem_avail_bytes",
}

// metricsPerGroup is how many metrics (a histogram counts once, as in a
// decoded MetricFamily) a node with series series pushes.
func metricsPerGroup(series int) int { return 3 + series - fixedSeries }

// node is one simulated edge node: its own registry of node metrics and its
// own Pusher, the way a real process would hold them. A node is pushed by one
// goroutine at a time (mu serialises the closed loop; the fleet scheduler
// never hands a node out twice), so its fields need no further locking.
type node struct {
	mu     sync.Mutex
	name   string
	pusher *push.Pusher
	rng    *rand.Rand

	seq      prometheus.Gauge
	stamp    prometheus.Gauge
	latency  prometheus.Histogram
	counters []prometheus.Counter
	gauges   []prometheus.Gauge

	attempted uint64    // seq of the last push sent
	acked     uint64    // seq of the last push answered 200/202
	ackedSent time.Time // when that push was sent: its TTL runs from after this
	ackedAt   time.Time // when its answer arrived: its TTL runs out before this + TTL
	churned   bool      // stops pushing halfway through the run
}

// nodeName names node i; fixed width keeps the check's output sorted.
func nodeName(i int) string { return fmt.Sprintf("edge-%06d", i) }

// newNode builds node i with series metrics in a private registry and a
// Pusher for url that pushes them with the run's format, method and headers.
func newNode(i int, url string, cfg *Config, d doer) (*node, error) {
	n := &node{name: nodeName(i), rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))}
	reg := prometheus.NewRegistry()
	if err := n.register(reg, cfg.Series); err != nil {
		return nil, fmt.Errorf("register metrics of %s: %w", n.name, err)
	}
	p := push.New(url, cfg.Job).Grouping("instance", n.name).Gatherer(reg).Client(d)
	if cfg.Format == FormatText {
		p = p.Format(expfmt.NewFormat(expfmt.TypeTextPlain))
	}
	if cfg.TTL > 0 {
		p = p.Header(http.Header{TTLHeader: {cfg.TTL.String()}})
	}
	if err := p.Error(); err != nil {
		return nil, fmt.Errorf("build pusher of %s: %w", n.name, err)
	}
	n.pusher = p
	return n, nil
}

// register creates the node's metrics: the fixed ones plus counters and
// gauges shaped like node_exporter's to reach series in total.
func (n *node) register(reg prometheus.Registerer, series int) error {
	n.seq = prometheus.NewGauge(prometheus.GaugeOpts{Name: SeqMetric, Help: "Sequence number of this push."})
	n.stamp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "loadtest_push_timestamp_seconds", Help: "When this push was built.",
	})
	n.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "edge_request_duration_seconds", Help: "Latency of requests served by the edge node.",
		Buckets: histogramBuckets,
	})
	rest := series - fixedSeries
	counters := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_network_receive_bytes_total", Help: "Bytes received per network device.",
	}, []string{"device"})
	gauges := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "edge_filesystem_avail_bytes", Help: "Free bytes per mounted filesystem.",
	}, []string{"mountpoint"})
	for j := range (rest + 1) / 2 {
		n.counters = append(n.counters, counters.WithLabelValues("eth"+strconv.Itoa(j)))
	}
	for j := range rest / 2 {
		n.gauges = append(n.gauges, gauges.WithLabelValues("/mnt/disk"+strconv.Itoa(j)))
	}
	for _, c := range []prometheus.Collector{n.seq, n.stamp, n.latency, counters, gauges} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// advance moves every metric on, so each push carries new values, and
// returns the sequence number this push will carry.
func (n *node) advance(now time.Time) uint64 {
	n.attempted++
	n.seq.Set(float64(n.attempted))
	n.stamp.Set(float64(now.UnixNano()) / 1e9)
	for range 3 {
		n.latency.Observe(n.rng.ExpFloat64() * 0.05)
	}
	for _, c := range n.counters {
		c.Add(float64(n.rng.IntN(1 << 16)))
	}
	for _, g := range n.gauges {
		g.Set(float64(n.rng.Int64N(1 << 40)))
	}
	return n.attempted
}

// pushOnce advances the metrics and sends one push with method; it records
// the acknowledgement on success.
func (n *node) pushOnce(ctx context.Context, method Method) error {
	sent := time.Now()
	seq := n.advance(sent)
	var err error
	if method == MethodPost {
		err = n.pusher.AddContext(ctx)
	} else {
		err = n.pusher.PushContext(ctx)
	}
	if err != nil {
		return err
	}
	n.acked, n.ackedSent, n.ackedAt = seq, sent, time.Now()
	return nil
}
