package procmetrics

import (
	"math"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry() // checks what Collect sends against Describe
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func value(mf *dto.MetricFamily) float64 {
	m := mf.GetMetric()[0]
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// The collector has client_golang's families, with the same HELP, type and
// values: those that cannot change between two collections equal, the
// others between what client_golang read before and after it.
func TestSameAsClientGolang(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("elsewhere New is client_golang's collector")
	}
	theirs := collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})
	before := gather(t, theirs)
	ours := gather(t, New())
	after := gather(t, theirs)

	require.Len(t, before, 9)
	require.Len(t, ours, len(before))
	for name, want := range before {
		got := ours[name]
		require.NotNil(t, got, name)
		require.Equal(t, want.GetHelp(), got.GetHelp(), name)
		require.Equal(t, want.GetType(), got.GetType(), name)
		require.Len(t, got.GetMetric(), 1, name)
		require.Empty(t, got.GetMetric()[0].GetLabel(), name)
		v, lo, hi := value(got), value(want), value(after[name])
		switch name {
		case "process_max_fds", "process_virtual_memory_max_bytes":
			require.Equal(t, lo, v, name)
		case "process_start_time_seconds": // the same unless the clock steps in between
			require.InDelta(t, lo, v, 1, name)
		case "process_open_fds": // the runtime's and the test's files come and go
			require.InDelta(t, lo, v, 4, name)
		case "process_resident_memory_bytes", "process_virtual_memory_bytes":
			// The runtime maps and frees memory.
			require.InEpsilon(t, lo, v, 0.25, name)
		default: // counters
			require.LessOrEqual(t, lo, v, name)
			require.LessOrEqual(t, v, hi, name)
		}
		require.False(t, math.IsNaN(v), name)
	}
	require.Greater(t, value(ours["process_cpu_seconds_total"]), 0.0)
	require.Greater(t, value(ours["process_start_time_seconds"]), 1.7e9)
}

// Scrapes run side by side: concurrent collections are race-free (go test
// -race) and each sends every family it describes.
func TestConcurrentCollect(t *testing.T) {
	c := New()
	descs := make(chan *prometheus.Desc, 16)
	c.Describe(descs)
	close(descs)
	want := len(descs)
	done := make(chan int)
	for range 4 {
		go func() {
			n := 0
			for range 50 {
				ch := make(chan prometheus.Metric, 16)
				c.Collect(ch)
				close(ch)
				n = 0
				for range ch {
					n++
				}
			}
			done <- n
		}()
	}
	for range 4 {
		require.Equal(t, want, <-done)
	}
}

func BenchmarkCollect(b *testing.B) {
	for _, bc := range []struct {
		name string
		c    prometheus.Collector
	}{{"pushring", New()}, {"client_golang", collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}} {
		b.Run(bc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(bc.c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
