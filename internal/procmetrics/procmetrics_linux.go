package procmetrics

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// userHZ is the unit of the CPU and start times in /proc/self/stat: the
// kernel reports them to user space in ticks of 1/100 s on the
// architectures Go supports (procfs assumes the same).
const userHZ = 100

// collector collects the process families from /proc/self and getrlimit.
// Scrapes run side by side, so Collect may be called concurrently; its
// read buffer and the boot time are taken under mu.
type collector struct {
	descs    descs
	pageSize float64
	bootTime float64 // seconds since the epoch, 0 if unknown
	mu       sync.Mutex
	buf      []byte
	files    *openFiles
}

// openFiles holds /proc/self/stat and /proc/self/net/netstat open between
// collections (-1: not open). Each read starts at offset 0, where the
// kernel renders the file anew, so the collector pays for the rendering
// and not for the path walk, open and close as well. They are closed
// when the collector is garbage collected.
type openFiles struct {
	stat, netstat int
}

func (f *openFiles) close() {
	for _, fd := range []*int{&f.stat, &f.netstat} {
		if *fd >= 0 {
			_ = syscall.Close(*fd)
			*fd = -1
		}
	}
}

// New returns the process collector.
func New() prometheus.Collector {
	c := &collector{descs: newDescs(), pageSize: float64(os.Getpagesize()), buf: make([]byte, 0, 4<<10),
		files: &openFiles{stat: -1, netstat: -1}}
	c.bootTime, _ = c.readBootTime() // 0 if unreadable: Collect tries again
	runtime.AddCleanup(c, (*openFiles).close, c.files)
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { c.descs.describe(ch) }

// Collect sends what it can read. What it cannot read leaves its families
// out, as client_golang's collector does unless told to report errors. The
// files are read under mu, the metrics sent after it: a scrape that is
// slow to take them does not hold up another.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var ms [9]prometheus.Metric
	n := 0
	add := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
		ms[n] = prometheus.MustNewConstMetric(d, t, v)
		n++
	}
	d := &c.descs
	c.mu.Lock()
	if st, err := c.readStat(); err == nil {
		add(d.cpu, prometheus.CounterValue, float64(st.utime+st.stime)/userHZ)
		add(d.vsize, prometheus.GaugeValue, float64(st.vsize))
		add(d.rss, prometheus.GaugeValue, float64(st.rss)*c.pageSize)
		if c.bootTime == 0 { // not readable at start: try again
			c.bootTime, _ = c.readBootTime()
		}
		if c.bootTime > 0 {
			add(d.start, prometheus.GaugeValue, c.bootTime+float64(st.start)/userHZ)
		}
	}
	in, out, netErr := c.readOctets()
	c.mu.Unlock()
	if fds, err := openFDs(); err == nil {
		add(d.openFDs, prometheus.GaugeValue, float64(fds))
	}
	var files, as syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &files) == nil && syscall.Getrlimit(syscall.RLIMIT_AS, &as) == nil {
		add(d.maxFDs, prometheus.GaugeValue, float64(files.Cur))
		add(d.maxVsize, prometheus.GaugeValue, float64(as.Cur))
	}
	if netErr == nil {
		add(d.inBytes, prometheus.CounterValue, in)
		add(d.outBytes, prometheus.CounterValue, out)
	}
	for _, m := range ms[:n] {
		ch <- m
	}
}

// read returns the content of a /proc file read once, in c.buf.
func (c *collector) read(path string) ([]byte, error) {
	fd := -1
	b, err := c.readOpen(&fd, path)
	if fd >= 0 {
		_ = syscall.Close(fd)
	}
	return b, err
}

// readOpen returns the content of a /proc file kept open in *fd (opened
// on first use), in c.buf. After an error the file is closed, to be
// opened again next time.
func (c *collector) readOpen(fd *int, path string) ([]byte, error) {
	if *fd < 0 {
		f, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		*fd = f
	}
	b := c.buf[:0]
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, len(b))
		}
		n, err := syscall.Pread(*fd, b[len(b):cap(b)], int64(len(b)))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			_ = syscall.Close(*fd)
			*fd = -1
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			c.buf = b
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// stat is what the collector takes from /proc/self/stat.
type stat struct {
	utime, stime, start, vsize, rss uint64
}

// readStat reads /proc/self/stat: after the command name in parentheses
// (which may hold blanks and parentheses, so the last ')' ends it), field
// 3 is the state; utime and stime are fields 14 and 15, starttime 22,
// vsize 23 and rss (pages) 24 (proc(5)).
func (c *collector) readStat() (stat, error) {
	b, err := c.readOpen(&c.files.stat, "/proc/self/stat")
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("/proc/self/stat: no command name")
	}
	fields := bytes.Fields(b[i+1:])
	field := func(n int) (uint64, error) { // n as proc(5) numbers them
		if n-3 >= len(fields) {
			return 0, fmt.Errorf("/proc/self/stat: %d fields, want %d", len(fields)+2, n)
		}
		return strconv.ParseUint(string(fields[n-3]), 10, 64)
	}
	var st stat
	for _, f := range []struct {
		n int
		v *uint64
	}{{14, &st.utime}, {15, &st.stime}, {22, &st.start}, {23, &st.vsize}, {24, &st.rss}} {
		if *f.v, err = field(f.n); err != nil {
			return stat{}, err
		}
	}
	return st, nil
}

// openFDs counts the process's open file descriptors: the size of
// /proc/self/fd, which Linux 6.2 and later report, else its entries.
func openFDs() (int, error) {
	if fi, err := os.Stat("/proc/self/fd"); err == nil && fi.Size() > 0 {
		return int(fi.Size()), nil
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	return len(names), err
}

// readBootTime reads the boot time ("btime") from /proc/stat. It is read
// once: client_golang reads it again on every collection, which was a
// third of its cost.
func (c *collector) readBootTime() (float64, error) {
	b, err := c.read("/proc/stat")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return float64(n), err
		}
	}
	return 0, errors.New("/proc/stat: no btime")
}

// readOctets reads InOctets and OutOctets of the IpExt pair of lines of
// /proc/self/net/netstat (a line of names, then one of values): the
// bytes of the process's network namespace. A counter the kernel does
// not have reads 0, and so do both without IpExt lines, as in
// client_golang's collector.
func (c *collector) readOctets() (in, out float64, err error) {
	b, err := c.readOpen(&c.files.netstat, "/proc/self/net/netstat")
	if err != nil {
		return 0, 0, err
	}
	return octetsOf(b)
}

// octetsOf reads InOctets and OutOctets of a netstat file's IpExt lines.
func octetsOf(b []byte) (in, out float64, err error) {
	var names [][]byte
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("IpExt:"))
		if !ok {
			continue
		}
		if names == nil {
			names = bytes.Fields(rest)
			continue
		}
		values := bytes.Fields(rest)
		if len(values) != len(names) {
			return 0, 0, errors.New("/proc/self/net/netstat: IpExt names and values differ in number")
		}
		for i, name := range names {
			var dst *float64
			switch string(name) {
			case "InOctets":
				dst = &in
			case "OutOctets":
				dst = &out
			default:
				continue
			}
			if *dst, err = strconv.ParseFloat(string(values[i]), 64); err != nil {
				return 0, 0, fmt.Errorf("/proc/self/net/netstat: %s: %w", name, err)
			}
		}
		return in, out, nil
	}
	return 0, 0, nil
}
