// Command pushbench measures closed-loop push throughput of
// Pushgateway-compatible targets side by side, with wrk as the load
// generator (a C client costs a fraction of the CPU of a Go one, so on a
// small machine the targets, not the client, set the rate).
//
// Every target gets the same bodies (one loadtest node's push: text 0.0.4
// or delimited protobuf, in -bodies versions with the same series and
// other values, as a node's successive pushes differ; or, with
// -body-files, a client's text body, the format named by its file) PUT
// to -groups groups round-robin, each group getting the next version each time
// round, over -connections keep-alive connections for -duration, after a
// warm-up. The targets run
// one at a time, in the order given, -rounds times over; the report has one
// row per target, format and round: pushes/s, non-2xx answers, and the
// target's CPU time per push read from /proc.
//
// The "floor" target is this program itself serving a handler that reads
// the body and answers 200: what any Go HTTP gateway pays before it does
// anything with a push.
//
//	go run ./loadtest/cmd/pushbench -pushring-bin ./pushring \
//	    -targets pushring,pushgateway,pushgateway-current,floor -formats text,protobuf
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pushring/pushring/internal/portowner"
	"github.com/pushring/pushring/loadtest"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// it is 100 on every Linux this runs on.
const clockTicks = 100

type config struct {
	targets     []string
	formats     []loadtest.Format
	files       map[loadtest.Format]string // -body-files by format name
	groups      int
	series      int
	bodies      int
	connections int
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	wrk         string
	pushring    string
	pushringArg string
	pushgateway string
	pgCurrent   string
	pgArgs      string
	workDir     string
	serveFloor  string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pushbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var c config
	var targets, formats, files string
	home, _ := os.UserHomeDir()
	fs := flag.NewFlagSet("pushbench", flag.ContinueOnError)
	fs.StringVar(&targets, "targets", "pushring,pushgateway,floor", "comma-separated targets: pushring, pushgateway (-pushgateway-bin), pushgateway-current (-pushgateway-current-bin), floor")
	fs.StringVar(&formats, "formats", "text,protobuf", "comma-separated body formats: text, protobuf")
	fs.StringVar(&files, "body-files", "", "comma-separated text bodies (a client's output; no timestamps) pushed as formats of their own, named by their files, each sample's value changed in each version")
	fs.IntVar(&c.groups, "groups", 1000, "groups pushed round-robin")
	fs.IntVar(&c.series, "series", 40, "series per push")
	fs.IntVar(&c.bodies, "bodies", 4, "bodies with the same series and different values; each group gets the next one every time round")
	fs.IntVar(&c.connections, "connections", 16, "keep-alive connections (pushers)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per target and format")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	fs.IntVar(&c.rounds, "rounds", 1, "times every target is measured, interleaved")
	fs.StringVar(&c.wrk, "wrk", "wrk", "wrk binary")
	fs.StringVar(&c.pushring, "pushring-bin", "pushring", "pushring binary")
	fs.StringVar(&c.pushringArg, "pushring-flags", "", "extra pushring flags, space-separated")
	fs.StringVar(&c.pushgateway, "pushgateway-bin", "/usr/bin/prometheus-pushgateway", "the Pushgateway binary of target pushgateway")
	fs.StringVar(&c.pgCurrent, "pushgateway-current-bin", filepath.Join(home, ".cache/pushring-ci/pushgateway-v1.11.5/pushgateway"), "the Pushgateway binary of target pushgateway-current")
	fs.StringVar(&c.pgArgs, "pushgateway-flags", "--push.disable-consistency-check", "Pushgateway flags, space-separated (default: unchecked, its fastest mode)")
	fs.StringVar(&c.workDir, "work-dir", "", "directory for bodies, scripts and logs (default: a temporary one)")
	fs.StringVar(&c.serveFloor, "serve-floor", "", "internal: serve the floor handler on this address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.serveFloor != "" {
		return serveFloor(ctx, c.serveFloor)
	}
	c.targets = strings.Split(targets, ",")
	if err := c.parseFormats(formats, files); err != nil {
		return err
	}
	if c.workDir == "" {
		dir, err := os.MkdirTemp("", "pushbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.workDir = dir
	}
	fmt.Fprintf(out, "| round | format | target | pushes/s | non-2xx | CPU per push |\n|---|---|---|---|---|---|\n")
	for round := 1; round <= c.rounds; round++ {
		for _, f := range c.formats {
			for _, t := range c.targets {
				r, err := c.measure(ctx, t, f)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", t, f, err)
				}
				fmt.Fprintf(out, "| %d | %s | %s | %.0f | %d | %.1f µs |\n", round, f, t, r.rate, r.non2xx, r.cpuPerPush.Seconds()*1e6)
			}
		}
	}
	return nil
}

// parseFormats sets c.formats from -formats and -body-files.
func (c *config) parseFormats(formats, files string) error {
	c.formats, c.files = nil, nil
	for _, f := range strings.Split(formats, ",") {
		switch loadtest.Format(f) {
		case loadtest.FormatText, loadtest.FormatProtobuf:
			c.formats = append(c.formats, loadtest.Format(f))
		case "":
		default:
			return fmt.Errorf("-formats: unknown format %q", f)
		}
	}
	if files == "" {
		return nil
	}
	c.files = map[loadtest.Format]string{}
	for _, path := range strings.Split(files, ",") {
		f := loadtest.Format(filepath.Base(path))
		if _, dup := c.files[f]; dup || f == loadtest.FormatText || f == loadtest.FormatProtobuf {
			return fmt.Errorf("-body-files: two formats named %q", f)
		}
		c.files[f] = path
		c.formats = append(c.formats, f)
	}
	return nil
}

type result struct {
	rate       float64
	non2xx     int
	cpuPerPush time.Duration
}

// measure starts target, loads it for the warm-up, then measures.
func (c *config) measure(ctx context.Context, target string, f loadtest.Format) (result, error) {
	port, err := freePort()
	if err != nil {
		return result{}, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd, err := c.command(target, addr)
	if err != nil {
		return result{}, err
	}
	logf, err := os.Create(filepath.Join(c.workDir, target+".log"))
	if err != nil {
		return result{}, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if err := waitReady(ctx, cmd.Process.Pid, port, 20*time.Second); err != nil {
		return result{}, fmt.Errorf("%w (log: %s)", err, logf.Name())
	}
	script, err := c.script(f)
	if err != nil {
		return result{}, err
	}
	if _, err := c.wrkRun(ctx, addr, script, c.warmup); err != nil {
		return result{}, err
	}
	before, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	r, err := c.wrkRun(ctx, addr, script, c.duration)
	if err != nil {
		return result{}, err
	}
	after, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	if n := r.rate * c.duration.Seconds(); n > 0 {
		r.cpuPerPush = time.Duration(float64(after-before) / n)
	}
	return r, nil
}

// command returns the process of target listening on addr.
func (c *config) command(target, addr string) (*exec.Cmd, error) {
	switch target {
	case "pushring":
		args := append([]string{"--web.listen-address=" + addr}, strings.Fields(c.pushringArg)...)
		return exec.Command(c.pushring, args...), nil
	case "pushgateway":
		return exec.Command(c.pushgateway, append([]string{"--web.listen-address=" + addr}, strings.Fields(c.pgArgs)...)...), nil
	case "pushgateway-current":
		return exec.Command(c.pgCurrent, append([]string{"--web.listen-address=" + addr}, strings.Fields(c.pgArgs)...)...), nil
	case "floor":
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return exec.Command(self, "-serve-floor", addr), nil
	}
	return nil, fmt.Errorf("unknown target %q", target)
}

// script writes c.bodies bodies of format f (one node's successive pushes:
// the same series, other values) and the wrk
// script that PUTs them to the groups round-robin, each group getting the
// next body each time round, and returns the script's path.
func (c *config) script(f loadtest.Format) (string, error) {
	var bodies [][]byte
	var err error
	if path, ok := c.files[f]; ok {
		bodies, err = fileBodies(path, max(c.bodies, 1))
	} else {
		bodies, err = loadtest.NodeBodies(f, c.series, 1, max(c.bodies, 1))
	}
	if err != nil {
		return "", err
	}
	var paths []string
	for i, body := range bodies {
		bodyPath := filepath.Join(c.workDir, fmt.Sprintf("body%d.%s", i+1, f))
		if err := os.WriteFile(bodyPath, body, 0o644); err != nil {
			return "", err
		}
		paths = append(paths, fmt.Sprintf("%q", bodyPath))
	}
	ctype := "text/plain; version=0.0.4; charset=utf-8"
	if f == loadtest.FormatProtobuf {
		ctype = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
	}
	lua := fmt.Sprintf(`local bodies = {}
for _, path in ipairs({%s}) do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
local groups = %d
local reqs = {}
-- Built in init, once wrk has set the Host header: request (b-1)*groups+g
-- PUTs body b to group g.
init = function(args)
  for b = 1, #bodies do
    for g = 1, groups do
      reqs[(b - 1) * groups + g] = wrk.format("PUT", "/metrics/job/pushbench/instance/edge-" .. string.format("%%06d", g - 1), {["Content-Type"] = %q}, bodies[b])
    end
  end
end
local i = 0
request = function()
  i = i %% #reqs + 1
  return reqs[i]
end
`, strings.Join(paths, ", "), c.groups, ctype)
	path := filepath.Join(c.workDir, "push-"+string(f)+".lua")
	return path, os.WriteFile(path, []byte(lua), 0o644)
}

// fileBodies returns n versions of the text body in path: the i-th has,
// as the value of its k-th sample line, k·7+i (the last blank-separated
// token of every line that is not blank or a comment).
func fileBodies(path string, n int) ([][]byte, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for v := range n {
		var b []byte
		k := 0
		for _, line := range strings.SplitAfter(string(text), "\n") {
			trimmed := strings.TrimSuffix(line, "\n")
			if strings.TrimSpace(trimmed) == "" || strings.HasPrefix(trimmed, "#") {
				b = append(b, line...)
				continue
			}
			sp := strings.LastIndexAny(trimmed, " \t")
			if sp < 0 {
				return nil, fmt.Errorf("%s: a sample line without a value: %q", path, trimmed)
			}
			k++
			b = append(b, trimmed[:sp+1]...)
			b = strconv.AppendInt(b, int64(k*7+v), 10)
			b = append(b, '\n')
		}
		out = append(out, b)
	}
	return out, nil
}

var (
	rateRE   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	non2xxRE = regexp.MustCompile(`Non-2xx or 3xx responses:\s+([0-9]+)`)
	errorsRE = regexp.MustCompile(`Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
)

// wrkRun runs wrk with one thread (the client's share of two cores) and
// parses its report.
func (c *config) wrkRun(ctx context.Context, addr, script string, d time.Duration) (result, error) {
	secs := max(1, int(d.Round(time.Second).Seconds()))
	cmd := exec.CommandContext(ctx, c.wrk, "-t1", "-c"+strconv.Itoa(c.connections), "-d"+strconv.Itoa(secs)+"s",
		"--timeout", "10s", "-s", script, "http://"+addr)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, outb)
	}
	return parseWrk(string(outb))
}

// parseWrk reads the rate and the failures (non-2xx answers and socket
// errors) from wrk's report.
func parseWrk(out string) (result, error) {
	m := rateRE.FindStringSubmatch(out)
	if m == nil {
		return result{}, fmt.Errorf("wrk printed no rate: %s", out)
	}
	var r result
	r.rate, _ = strconv.ParseFloat(m[1], 64)
	if m := non2xxRE.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := errorsRE.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.non2xx += n
		}
	}
	return r, nil
}

// cpuTime returns the user + system CPU time of process pid.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// waitReady polls /-/ready on port until process pid answers 200: an
// answer from a process that took the port first is an error, not a
// target to measure.
func waitReady(ctx context.Context, pid, port int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				switch portowner.Answerer(pid, port) {
				case portowner.Ours:
					return nil
				case portowner.Theirs:
					return fmt.Errorf("another process holds %s (it took the port before the target bound it); run again", base)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s", base, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// serveFloor serves the floor: read the whole body, answer 200. It stops
// on SIGTERM (ctx).
func serveFloor(ctx context.Context, addr string) error {
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(floor)}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// floor reads the whole body and answers 200; /-/ready answers 200 too.
func floor(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}
