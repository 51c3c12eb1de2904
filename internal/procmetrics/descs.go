package procmetrics

import "github.com/prometheus/client_golang/prometheus"

// descs are the families of client_golang's process collector. Names and
// HELP texts are the ones dashboards and the Pushgateway's own exposition
// have, so they must not change.
type descs struct {
	cpu, openFDs, maxFDs, vsize, maxVsize, rss, start, inBytes, outBytes *prometheus.Desc
}

func newDescs() descs {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return descs{
		cpu:      d("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."),
		openFDs:  d("process_open_fds", "Number of open file descriptors."),
		maxFDs:   d("process_max_fds", "Maximum number of open file descriptors."),
		vsize:    d("process_virtual_memory_bytes", "Virtual memory size in bytes."),
		maxVsize: d("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes."),
		rss:      d("process_resident_memory_bytes", "Resident memory size in bytes."),
		start:    d("process_start_time_seconds", "Start time of the process since unix epoch in seconds."),
		inBytes:  d("process_network_receive_bytes_total", "Number of bytes received by the process over the network."),
		outBytes: d("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network."),
	}
}

func (d *descs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.cpu, d.openFDs, d.maxFDs, d.vsize, d.maxVsize, d.rss, d.start, d.inBytes, d.outBytes} {
		ch <- x
	}
}
