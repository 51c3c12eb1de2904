package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pushring/pushring/internal/portowner"
)

// stopGrace is how long a spawned target may take to exit after SIGTERM
// before it is killed.
const stopGrace = 5 * time.Second

// ErrNoClusterFlags says the binary cannot form a cluster, so -spawn N>1
// cannot start one.
var ErrNoClusterFlags = errors.New("cluster flags not available in this build (--help lists no --cluster.listen-address); use -spawn 1")

// process is one spawned target. Its exited channel closes when the
// process has been reaped; the goroutine that reaps it is owned by the
// process and ends with it.
type process struct {
	name    string
	cmd     *exec.Cmd
	addr    string // host:port of the HTTP listener
	logPath string
	exited  chan struct{}
	waitErr error // valid once exited is closed
}

// startProcess starts bin with args, its output going to logPath.
func startProcess(name, bin string, args []string, addr, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logFile.Close() // the child holds its own descriptor
	p := &process{name: name, cmd: cmd, addr: addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// baseURL is the process's push URL.
func (p *process) baseURL() string { return "http://" + p.addr }

// stop asks the process to exit and kills it after stopGrace; it returns
// once the process is reaped.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // an error means it is already gone; exited will close
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitReady polls /-/ready until it answers 200, the process exits or
// timeout passes. The answer counts only if the process holds the
// listener: another process may have taken the port between freePort and
// the bind, and the run would then measure that process.
func (p *process) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, portText, err := net.SplitHostPort(p.addr)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("%s: port of %s: %w", p.name, p.addr, err)
	}
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if readyOnce(ctx, client, p.baseURL()+"/-/ready") {
			switch portowner.Answerer(p.cmd.Process.Pid, port) {
			case portowner.Ours:
				return nil
			case portowner.Theirs:
				return fmt.Errorf("%s: another process holds %s (it took the port before %s could bind it); run again. log:\n%s",
					p.name, p.addr, p.name, p.logTail())
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%v); log:\n%s", p.name, p.waitErr, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (raise -ready-timeout); log:\n%s", p.name, timeout, p.logTail())
		case <-tick.C:
		}
	}
}

func readyOnce(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// logTail returns the end of the process's log, for error messages.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const tail = 2048
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

// freePort asks the kernel for an unused loopback port. Another process
// may take it before the target binds it; waitReady then says so.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// buildGateway builds ./cmd/pushring of the module at srcDir into dir.
func buildGateway(ctx context.Context, srcDir, dir string) (string, error) {
	bin := filepath.Join(dir, "pushring-gateway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/pushring")
	cmd.Dir = srcDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/pushring in %s (or pass -gateway-bin): %w\n%s", srcDir, err, out)
	}
	return bin, nil
}

// supportsCluster reports whether bin's --help lists the cluster flags. Go's
// flag package prints one dash, kingpin two; both count.
func supportsCluster(ctx context.Context, bin string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput() // --help may exit non-zero; the text is what counts
	return bytes.Contains(out, []byte("-cluster.listen-address"))
}

// peerSettleTimeout is the --cluster.settle-timeout of spawned peers: loopback
// gossip converges within a few rounds, so a second is plenty and keeps the
// start of a run short (the gateway's default is 5s).
const peerSettleTimeout = "1s"

// peerArgs returns the command line of peer i of a spawned set: its HTTP
// address and, when clusterPorts is set, what makes it a distinct member
// of one cluster: its gossip address; a gRPC address on a loopback port
// the kernel picks (the peer advertises the port it bound, so there is no
// window in which another process can take it, and no clash on the
// default :9092); a peer name (the default, the hostname, is the same for
// every local peer); and every other peer as a seed, so the set forms one
// cluster whichever peers come up first. extra comes last so it can
// override anything.
func peerArgs(i int, httpPorts, clusterPorts []int, extra []string) []string {
	args := []string{"--web.listen-address=" + loopback(httpPorts[i])}
	if clusterPorts != nil {
		args = append(args,
			"--cluster.listen-address="+loopback(clusterPorts[i]),
			"--cluster.grpc-listen-address="+loopback(0),
			"--cluster.peer-name=peer-"+strconv.Itoa(i),
			"--cluster.settle-timeout="+peerSettleTimeout,
		)
		for j, p := range clusterPorts {
			if j != i {
				args = append(args, "--cluster.peer="+loopback(p))
			}
		}
	}
	return append(args, extra...)
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// ports returns n free loopback ports.
func ports(n int) ([]int, error) {
	ps := make([]int, n)
	for i := range ps {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	return ps, nil
}

// spawnSet starts a peer of bin on each of httpPorts, peer i with args(i),
// then waits until all are ready and returns them; on error it stops what
// it started. All start before any is waited for: a cluster peer is not
// ready until it has joined its seeds, which are the peers after it.
func spawnSet(ctx context.Context, cfg *Config, name, bin, dir string, httpPorts []int, args func(i int) []string, logger *slog.Logger) ([]*process, error) {
	var procs []*process
	for i, port := range httpPorts {
		peer := fmt.Sprintf("%s-%d", name, i)
		p, err := startProcess(peer, bin, args(i), loopback(port), filepath.Join(dir, peer+".log"))
		if err != nil {
			stopAll(procs)
			return nil, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.waitReady(ctx, cfg.ReadyTimeout); err != nil {
			stopAll(procs)
			return nil, err
		}
		logger.Info("spawned target", "name", p.name, "pid", p.cmd.Process.Pid, "addr", p.addr, "log", p.logPath)
	}
	return procs, nil
}

// startReady starts one peer and waits until it is ready; on error it
// stops it.
func startReady(ctx context.Context, cfg *Config, name, bin string, args []string, addr, logPath string) (*process, error) {
	p, err := startProcess(name, bin, args, addr, logPath)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, cfg.ReadyTimeout); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// stopAll stops every process, the last started first.
func stopAll(procs []*process) {
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
}

// splitFlags splits a -target-flags value on white space.
func splitFlags(s string) []string { return strings.Fields(s) }
